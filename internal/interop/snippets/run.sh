#!/usr/bin/env bash
# Checks the shop-side snippets of README.md ("The shop's side": PHP,
# Python, Node.js, Ruby) with the real interpreters against what our Go code
# signs. Rerun it from anywhere:
#
#     ./internal/interop/snippets/run.sh
#
# It copies each README snippet verbatim into readme.{php,py,js,rb} here
# (commit them if they changed), has fixtures/main.go take one order through
# the plugin (API intake, sandbox payment, return) and capture the callback
# notify sends and the success-page request with its X-Checkout-* headers,
# then runs driver.{php,py,js,rb}: each feeds every case to its snippet the
# way its platform presents a request ($_SERVER, a dict, Node's req, a Rack
# env) and prints "accepted" or "refused". Signed cases must be accepted;
# tampered body, wrong secret, stale timestamp, status pending and the other
# altered cases must be refused (an exception counts as a failure).
#
# Needs go, php (php-cli), python3 (3.9+), node and ruby with rack
# (Debian: apt-get install php-cli ruby ruby-rack). It is not part of the Go
# test suite and not run by CI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
readme="$root/README.md"

# extract HEADING LANG: the first ```LANG block after "#### HEADING" in the
# section "## The shop's side", verbatim.
extract() {
	awk -v head="#### $1" -v fence="\`\`\`$2" '
		/^## / { in_sec = ($0 == "## The shop'"'"'s side") }
		in_sec && $0 == head { found = 1; next }
		found && !inblk && $0 == fence { inblk = 1; next }
		inblk && $0 == "```" { exit }
		inblk { print }
	' "$readme"
}
for s in "PHP php readme.php" "Python python readme.py" "Node.js js readme.js" "Ruby ruby readme.rb"; do
	set -- $s
	extract "$1" "$2" >"$here/$3.new"
	if [ ! -s "$here/$3.new" ]; then
		echo "run.sh: no \`\`\`$2 block under \"#### $1\" in README.md" >&2
		exit 1
	fi
	mv "$here/$3.new" "$here/$3"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go run ./internal/interop/snippets/fixtures) >"$tmp/fixtures.json"

fail=0
run() {
	echo "== $1"
	shift
	"$@" "$tmp/fixtures.json" || fail=1
}
run "PHP $(php -r 'echo PHP_VERSION;')" php "$here/driver.php"
run "Python $(python3 -c 'import platform; print(platform.python_version())')" python3 "$here/driver.py"
run "Node.js $(node --version)" node "$here/driver.js"
run "Ruby $(ruby -e 'print RUBY_VERSION')" ruby "$here/driver.rb"
if [ "$fail" = 0 ]; then
	echo "all four snippets: every case as expected"
else
	echo "some snippet answered a case wrongly (see above)"
fi
exit "$fail"
