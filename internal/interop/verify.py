#!/usr/bin/env python3
"""Verify caddy-checkout signatures, written from the specifications' text.

Standard Webhooks v1 (webhook-id, webhook-timestamp, webhook-signature),
SPEC 6.2 (X-Checkout-Signature: t=<unix>,v1=<hex>) and SPEC 4.2 (signed
links) are re-implemented here with the standard library only, so that
interop_test.go can check the Go code against an implementation that is
not ours.

Reads a JSON array of cases on stdin and prints a JSON array of verdicts,
each {"name", "ok", "error"}. Case kinds:

  webhook  {secret, headers: {name: value}, body_b64, now}
  headers  {secret, signature, fields: {method, path, order, status, amount,
            currency, transaction}, now, tolerance}
  link     {secret, query, now}
"""

import base64
import hashlib
import hmac
import json
import sys
import urllib.parse

WEBHOOK_TOLERANCE = 5 * 60


class Refused(Exception):
    pass


def key_of(secret):
    # Every HMAC is keyed with the bytes that the whsec_ secret's base64
    # part decodes to (Standard Webhooks; SPEC 6.2).
    if not secret.startswith("whsec_"):
        raise Refused("secret without whsec_ prefix")
    return base64.b64decode(secret[len("whsec_"):], validate=True)


def strict_int(s):
    if not s or not s.isascii() or not s.isdigit():
        raise Refused("timestamp is not a decimal integer: %r" % s)
    return int(s)


def verify_webhook(c):
    key = key_of(c["secret"])
    headers = {k.lower(): v for k, v in c["headers"].items()}
    try:
        msg_id = headers["webhook-id"]
        ts = headers["webhook-timestamp"]
        sigs = headers["webhook-signature"]
    except KeyError as e:
        raise Refused("missing header %s" % e)
    if abs(c["now"] - strict_int(ts)) > WEBHOOK_TOLERANCE:
        raise Refused("timestamp outside the tolerance")
    body = base64.b64decode(c["body_b64"])
    # The signed content is "{msg_id}.{timestamp}.{payload}".
    content = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    # A space-delimited list of "version,signature"; only v1 is HMAC-SHA256.
    for entry in sigs.split(" "):
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return
    raise Refused("no matching v1 signature")


def verify_headers(c):
    key = key_of(c["secret"])
    parts = dict(p.split("=", 1) for p in c["signature"].split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        raise Refused("t= or v1= missing")
    t = parts["t"]
    if abs(c["now"] - strict_int(t)) > c["tolerance"]:
        raise Refused("timestamp outside the tolerance")
    f = c["fields"]
    # t "\n" METHOD "\n" path "\n" order "\n" status "\n" amount "\n"
    # currency "\n" transaction; a missing value is the empty string.
    message = "\n".join([t, f.get("method", ""), f.get("path", ""), f.get("order", ""),
                         f.get("status", ""), f.get("amount", ""), f.get("currency", ""),
                         f.get("transaction", "")])
    expected = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(parts["v1"].encode(), expected.encode()):
        raise Refused("signature does not match")


def rfc3986(s):
    # Everything but ALPHA, DIGIT and "-._~" is percent-encoded, as UTF-8.
    return urllib.parse.quote(s, safe="", encoding="utf-8")


def verify_link(c):
    key = key_of(c["secret"])
    pairs = urllib.parse.parse_qsl(c["query"], keep_blank_values=True)
    sigs = [v for k, v in pairs if k == "sig"]
    if len(sigs) != 1:
        raise Refused("want exactly one sig")
    # The query without sig, keys sorted, RFC 3986 encoded.
    rest = sorted((k, v) for k, v in pairs if k != "sig")
    canonical = "&".join(rfc3986(k) + "=" + rfc3986(v) for k, v in rest)
    expected = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sigs[0].lower().encode(), expected.encode()):
        raise Refused("sig does not match")
    exps = [v for k, v in pairs if k == "exp"]
    if len(exps) != 1 or c["now"] >= strict_int(exps[0]):
        raise Refused("link expired")


KINDS = {"webhook": verify_webhook, "headers": verify_headers, "link": verify_link}


def main():
    verdicts = []
    for c in json.load(sys.stdin):
        try:
            KINDS[c["kind"]](c)
            verdicts.append({"name": c["name"], "ok": True})
        except (Refused, ValueError, KeyError) as e:
            verdicts.append({"name": c["name"], "ok": False, "error": str(e)})
    json.dump(verdicts, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
