# Runs the README's Ruby snippet (readme.rb) over the cases in the JSON file
# ARGV[0] (see run.sh), each as a Rack server presents the request: an env
# with HTTP_* headers, REQUEST_METHOD and REQUEST_URI; the raw body as read
# from rack.input (a binary string).
require "json"
load File.join(__dir__, "readme.rb")

# Values as Puma or WEBrick give them: binary strings, the bytes received.
def rack_env(headers)
  headers.to_h { |name, value| ["HTTP_" + name.upcase.tr("-", "_"), value.b] }
end

passed = failed = 0
JSON.parse(File.read(ARGV[0])).each do |c|
  env = rack_env(c["headers"])
  got = begin
    ok = if c["kind"] == "callback"
      verify_callback(c["secret"], env, c["body_b64"].unpack1("m0").b)
    else
      checkout_paid?(c["secret"], env.merge("REQUEST_METHOD" => c["method"], "REQUEST_URI" => c["request_uri"].b))
    end
    ok ? "accepted" : "refused"
  rescue StandardError => e
    "threw #{e.class}: #{e.message}"
  end
  want = c["expect"] ? "accepted" : "refused"
  good = got == want
  good ? passed += 1 : failed += 1
  puts format("  %-4s %-8s %-78s %s", good ? "ok" : "FAIL", c["kind"], c["name"], good ? got : "#{got}, want #{want}")
end
puts "ruby: #{passed} passed, #{failed} failed"
exit(failed.zero? ? 0 : 1)
