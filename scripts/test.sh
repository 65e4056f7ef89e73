#!/usr/bin/env bash
# The full test suite of caddy-checkout. On a fresh machine it installs what
# the tests need (Go modules, the npm package of the Standard Webhooks
# interop check); with CI=true a missing tool fails the tests instead of
# skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
	if need apt-get && [ "$(id -u)" = 0 ]; then
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
	else
		echo "missing: $* (install it, or run as root so this script can)" >&2
		return 1
	fi
}
need node || apt_install nodejs
need npm || apt_install npm
need python3 || apt_install python3
need chromium || apt_install chromium # internal/e2e browser test
need prosody || apt_install prosody   # the Voucher-Safe XMPP tests (internal/xmpptest)
compgen -G '/usr/sbin/php-fpm*' >/dev/null || apt_install php-fpm # internal/e2e: the shop behind php_fastcgi
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || apt_install postgresql # internal/pgtest runs its own server (not on PATH); the package's cluster on 5432 is unused

# stage NAME prints how long the stage before took, then NAME.
stage_start=$SECONDS
stage_name="set-up (packages)"
stage() {
	echo "   ($stage_name: $((SECONDS - stage_start)) s)"
	stage_start=$SECONDS
	stage_name=$1
	echo "== $1"
}
trap 'echo "   ($stage_name: $((SECONDS - stage_start)) s; all stages: $SECONDS s)"' EXIT

stage "go mod download"
go mod download

stage "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" $unformatted >&2
	exit 1
fi

stage "go mod tidy (nothing to change)"
go mod tidy -diff

stage "go vet"
go vet ./...

stage "npm (Standard Webhooks interop verifier)"
(cd internal/interop/node && npm ci --no-audit --no-fund --loglevel=error)

stage "go test -race"
go test -race -count=1 -timeout 20m ./...

stage "fuzz (each target for a few seconds; inputs that failed stay in testdata/fuzz as regression cases)"
fuzztime=${FUZZTIME:-5s}
while read -r pkg target; do
	# Go's fuzzer can end a run on a busy machine with "context deadline
	# exceeded" when a worker answers late at the end of -fuzztime, having
	# found nothing (no input is written). Only that is run again, twice
	# at most; any failing input fails the stage.
	for try in 1 2 3; do
		if go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" >/tmp/fuzz.$$ 2>&1; then
			break
		fi
		if [ "$try" -lt 3 ] && grep -q "context deadline exceeded" /tmp/fuzz.$$ &&
			! grep -q "Failing input written to" /tmp/fuzz.$$; then
			echo "$pkg $target: the fuzzer's own deadline error, with no failing input; running it again"
			continue
		fi
		cat /tmp/fuzz.$$ >&2
		rm -f /tmp/fuzz.$$
		echo "fuzzing $target in $pkg failed (a failing input is kept under $pkg/testdata/fuzz/$target)" >&2
		exit 1
	done
	echo "$pkg $target: $(grep -o 'elapsed: [^,]*, execs: [0-9]*' /tmp/fuzz.$$ | tail -1)"
done <<'TARGETS'
./money FuzzParse
./sign FuzzVerifyWebhook
./sign FuzzVerifyLink
./handlers FuzzStripCheckoutHeaders
./handlers FuzzHeaderIntake
./handlers FuzzAPICreate
./handlers FuzzPricedPath
./handlers FuzzReceipt
./providers/stripe FuzzVerify
./providers/komoju FuzzVerify
./providers/vouchersafe FuzzParseLine
./providers/vouchersafe FuzzParseCustomerJID
./providers/cyclos FuzzCallbackParams
./providers/erc20/hdkey FuzzParse
./providers/erc20 FuzzOxbtcpayRPC
./providers/stripe FuzzReturn
./providers/komoju FuzzReturn
./providers/cyclos FuzzReturn
./providers/erc20 FuzzMatchLogs
./caddymodule FuzzCursor
TARGETS
rm -f /tmp/fuzz.$$

stage "build from xcaddy.json"
out=$(mktemp -d)/caddy
./scripts/build.sh "$out"
# Read the list once: grep -q stops reading at the first match, and under
# pipefail the writer's SIGPIPE would fail the step.
modules=$("$out" list-modules)
for m in http.handlers.checkout admin.api.checkout checkout.providers.sandbox checkout.providers.stripe \
	checkout.providers.cyclos checkout.providers.erc20 checkout.providers.komoju checkout.providers.vouchersafe; do
	if ! grep -qx "$m" <<<"$modules"; then
		echo "the built Caddy lacks $m" >&2
		exit 1
	fi
done
echo "built $out with the checkout modules"
