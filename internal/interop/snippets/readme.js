const crypto = require("node:crypto");
const key = (secret) => Buffer.from(secret.replace(/^whsec_/, ""), "base64");
const same = (a, b) => {
  const x = Buffer.from(a), y = Buffer.from(b); // bytes: a header may hold non-ASCII
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

function verifyCallback(secret, headers, rawBody /* Buffer */) {
  const id = headers["webhook-id"], ts = headers["webhook-timestamp"];
  if (!id || !/^\d+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const want = crypto.createHmac("sha256", key(secret)).update(`${id}.${ts}.`).update(rawBody).digest("base64");
  return (headers["webhook-signature"] || "").split(" ").some((s) => s.startsWith("v1,") && same(s.slice(3), want));
}

function checkoutPaid(secret, req /* node:http or Express: method, url, headers (lower-case) */) {
  const m = /^t=(\d+)((?:,v1=[0-9a-f]{64})+)$/.exec(req.headers["x-checkout-signature"] || "");
  if (!m || Math.abs(Date.now() / 1000 - Number(m[1])) > 300) return false;
  const h = (n) => req.headers["x-checkout-" + n] || "";
  const msg = [m[1], req.method, (req.originalUrl || req.url).split("?")[0], h("order"), h("status"), h("amount"), h("currency"), h("transaction")].join("\n");
  const want = crypto.createHmac("sha256", key(secret)).update(msg).digest("hex");
  return m[2].split(",v1=").slice(1).some((mac) => same(mac, want)) && h("status") === "paid"; // two v1 during a rotation
}
