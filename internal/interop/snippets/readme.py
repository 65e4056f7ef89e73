import base64, hashlib, hmac, re, time

def key(secret): return base64.b64decode(secret.removeprefix("whsec_"))

def verify_callback(secret, headers, body: bytes) -> bool:
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not re.fullmatch(r"[0-9]{1,12}", ts) or abs(time.time() - int(ts)) > 300: return False
    want = base64.b64encode(hmac.new(key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest())
    return any(v == "v1" and hmac.compare_digest(want, sig.encode())
               for v, _, sig in (s.partition(",") for s in headers.get("webhook-signature", "").split()))

# request_uri: the request target as received, still percent-encoded: environ["RAW_URI"] (gunicorn)
# or environ["REQUEST_URI"] (uWSGI); not PATH_INFO or request.path, which are decoded.
def checkout_paid(secret, method, request_uri, headers) -> bool:
    m = re.fullmatch(r"t=([0-9]{1,12})((?:,v1=[0-9a-f]{64})+)", headers.get("X-Checkout-Signature", ""))
    if not m or abs(time.time() - int(m[1])) > 300: return False
    h = lambda n: headers.get("X-Checkout-" + n, "")
    msg = "\n".join([m[1], method, request_uri.partition("?")[0], h("Order"), h("Status"), h("Amount"), h("Currency"), h("Transaction")])
    want = hmac.new(key(secret), msg.encode(), hashlib.sha256).hexdigest()
    good = any(hmac.compare_digest(want, mac) for mac in m[2].split(",v1=")[1:])  # two during a rotation
    return good and h("Status") == "paid"
