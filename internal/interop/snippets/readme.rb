require "openssl"; require "rack/utils"

def checkout_key(secret) = secret.delete_prefix("whsec_").unpack1("m0") # strict base64

# Callback: env is the Rack env, body the raw body (env["rack.input"].read).
def verify_callback(secret, env, body)
  id, ts = env["HTTP_WEBHOOK_ID"].to_s, env["HTTP_WEBHOOK_TIMESTAMP"].to_s
  return false unless !id.empty? && ts.match?(/\A\d+\z/) && (Time.now.to_i - ts.to_i).abs <= 300
  want = [OpenSSL::HMAC.digest("SHA256", checkout_key(secret), "#{id}.#{ts}.#{body}")].pack("m0")
  env["HTTP_WEBHOOK_SIGNATURE"].to_s.split(" ").any? { |s| v, sig = s.split(",", 2); v == "v1" && Rack::Utils.secure_compare(want, sig.to_s) }
end

def checkout_paid?(secret, env)
  m = /\At=(\d+)((?:,v1=\h{64})+)\z/.match(env["HTTP_X_CHECKOUT_SIGNATURE"].to_s) or return false
  return false if (Time.now.to_i - m[1].to_i).abs > 300
  h = ->(n) { env["HTTP_X_CHECKOUT_#{n}"].to_s }
  msg = [m[1], env["REQUEST_METHOD"], env["REQUEST_URI"].to_s.split("?").first,
         h["ORDER"], h["STATUS"], h["AMOUNT"], h["CURRENCY"], h["TRANSACTION"]].join("\n")
  want = OpenSSL::HMAC.hexdigest("SHA256", checkout_key(secret), msg)
  m[2].split(",v1=").drop(1).any? { |mac| Rack::Utils.secure_compare(want, mac) } && h["STATUS"] == "paid" # two during a rotation
end
