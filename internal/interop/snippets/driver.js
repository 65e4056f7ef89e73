// Runs the README's Node.js snippet (readme.js) over the cases in the JSON
// file process.argv[2] (see run.sh), each as node:http presents a request:
// req.method, req.url (the raw request target), req.headers with lower-case
// names; the raw body as a Buffer.
const fs = require("node:fs");
const path = require("node:path");

const src = fs.readFileSync(path.join(__dirname, "readme.js"), "utf8");
const { verifyCallback, checkoutPaid } = new Function("require", `${src}\nreturn { verifyCallback, checkoutPaid };`)(require);

let passed = 0, failed = 0;
for (const c of JSON.parse(fs.readFileSync(process.argv[2], "utf8"))) {
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k.toLowerCase(), v]));
  let got;
  try {
    const ok = c.kind === "callback"
      ? verifyCallback(c.secret, headers, Buffer.from(c.body_b64, "base64"))
      : checkoutPaid(c.secret, { method: c.method, url: c.request_uri, headers });
    got = ok ? "accepted" : "refused";
  } catch (e) {
    got = `threw ${e.name}: ${e.message}`;
  }
  const want = c.expect ? "accepted" : "refused";
  const good = got === want;
  good ? passed++ : failed++;
  console.log(`  ${(good ? "ok" : "FAIL").padEnd(4)} ${c.kind.padEnd(8)} ${c.name.padEnd(78)} ${good ? got : `${got}, want ${want}`}`);
}
console.log(`node: ${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
