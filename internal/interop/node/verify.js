// verify.js checks Standard Webhooks signatures with the standardwebhooks
// package, an implementation that is not ours. It reads a JSON array of
// cases on stdin, each {name, secret, headers, body_b64}, and prints a
// JSON array of verdicts, each {name, ok, error}. interop_test.go drives it.
"use strict";

const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const verdicts = cases.map((c) => {
    try {
      const wh = new Webhook(c.secret);
      wh.verify(Buffer.from(c.body_b64, "base64"), c.headers, { jsonParse: false });
      return { name: c.name, ok: true };
    } catch (e) {
      return { name: c.name, ok: false, error: String((e && e.message) || e) };
    }
  });
  process.stdout.write(`${JSON.stringify(verdicts)}\n`);
});
