function checkout_key(string $secret): string { return base64_decode(substr($secret, 6)); }

// Callback: returns the decoded event, or null.
function verify_callback(string $secret, string $body): ?array {
    $id = $_SERVER['HTTP_WEBHOOK_ID'] ?? ''; $ts = $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '';
    if ($id === '' || !ctype_digit($ts) || abs(time() - (int)$ts) > 300) return null;
    $want = base64_encode(hash_hmac('sha256', "$id.$ts.$body", checkout_key($secret), true));
    foreach (explode(' ', $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '') as $sig) {
        [$v, $mac] = array_pad(explode(',', $sig, 2), 2, '');
        if ($v === 'v1' && hash_equals($want, $mac)) return json_decode($body, true);
    }
    return null;
}
// usage: $event = verify_callback(getenv('CHECKOUT_SECRET'), file_get_contents('php://input'));

// Success page: true only for a verified payment.
function checkout_paid(string $secret): bool {
    if (!preg_match('/^t=(\d+)((?:,v1=[0-9a-f]{64})+)$/', $_SERVER['HTTP_X_CHECKOUT_SIGNATURE'] ?? '', $m)) return false;
    if (abs(time() - (int)$m[1]) > 300) return false;
    $h = fn($n) => $_SERVER['HTTP_X_CHECKOUT_' . $n] ?? '';
    $msg = implode("\n", [$m[1], $_SERVER['REQUEST_METHOD'], strtok($_SERVER['REQUEST_URI'], '?'),
        $h('ORDER'), $h('STATUS'), $h('AMOUNT'), $h('CURRENCY'), $h('TRANSACTION')]);
    $want = hash_hmac('sha256', $msg, checkout_key($secret));
    foreach (explode(',v1=', substr($m[2], 4)) as $mac) { // two during a secret rotation
        if (hash_equals($want, $mac)) return $h('STATUS') === 'paid';
    }
    return false;
}
