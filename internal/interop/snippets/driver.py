"""Runs the README's Python snippet (readme.py) over the cases in the JSON
file sys.argv[1] (see run.sh): headers as a dict with the names as given
(webhook-* lower-case, X-Checkout-* as written), the raw body as bytes."""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import readme  # noqa: E402

passed = failed = 0
for c in json.load(open(sys.argv[1], encoding="utf-8")):
    try:
        if c["kind"] == "callback":
            ok = readme.verify_callback(c["secret"], dict(c["headers"]), base64.b64decode(c["body_b64"]))
        else:
            ok = readme.checkout_paid(c["secret"], c["method"], c["request_uri"], dict(c["headers"]))
        got = "accepted" if ok else "refused"
    except Exception as e:  # a snippet must answer, not raise
        got = f"threw {type(e).__name__}: {e}"
    want = "accepted" if c["expect"] else "refused"
    good = got == want
    passed, failed = passed + good, failed + (not good)
    print(f"  {'ok' if good else 'FAIL':<4} {c['kind']:<8} {c['name']:<78} {got if good else f'{got}, want {want}'}")
print(f"python: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
