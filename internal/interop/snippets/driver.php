<?php
// Runs the README's PHP snippet (readme.php) over the cases in the JSON
// file $argv[1] (see run.sh), each as PHP-FPM would present the request:
// headers in $_SERVER as HTTP_*, REQUEST_METHOD, REQUEST_URI, the raw body.
eval(file_get_contents(__DIR__ . '/readme.php'));

$base = $_SERVER;
$passed = $failed = 0;
foreach (json_decode(file_get_contents($argv[1]), true) as $c) {
    $_SERVER = $base;
    foreach ($c['headers'] as $name => $value) {
        $_SERVER['HTTP_' . strtoupper(str_replace('-', '_', $name))] = $value;
    }
    try {
        if ($c['kind'] === 'callback') {
            $got = verify_callback($c['secret'], base64_decode($c['body_b64'])) !== null ? 'accepted' : 'refused';
        } else {
            $_SERVER['REQUEST_METHOD'] = $c['method'];
            $_SERVER['REQUEST_URI'] = $c['request_uri'];
            $got = checkout_paid($c['secret']) ? 'accepted' : 'refused';
        }
    } catch (Throwable $e) {
        $got = 'threw ' . get_class($e) . ': ' . $e->getMessage();
    }
    $want = $c['expect'] ? 'accepted' : 'refused';
    $ok = $got === $want;
    $ok ? $passed++ : $failed++;
    $pad = str_repeat(' ', max(0, 78 - preg_match_all('/./us', $c['name'])));
    printf("  %-4s %-8s %s%s %s\n", $ok ? 'ok' : 'FAIL', $c['kind'], $c['name'], $pad, $ok ? $got : "$got, want $want");
}
echo "php: $passed passed, $failed failed\n";
exit($failed ? 1 : 0);
