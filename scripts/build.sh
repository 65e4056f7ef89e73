#!/usr/bin/env bash
# Builds a Caddy with this plugin from xcaddy.json (the Caddy version and
# the plugins, in the field names of xcaddy's Builder) with xcaddy itself,
# pinned as a Go tool in go.mod: go tool xcaddy build <version> --with ...
# A plugin with no version that is this module is taken from the working
# tree: --with github.com/caddy-checkout/checkout@v0.0.0=. (with no
# version at all, Go would ask the module proxy for the latest release of
# the module before replacing it).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist/caddy}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"

self=$(go list -m)
# xcaddy.json read without a JSON tool: the text on one line, then one
# token a line at each brace and comma, so that the file's layout, the
# order of fields and a missing "version" do not matter.
tokens=$(tr -d '\n\r' <xcaddy.json | sed 's/[{}]/\n&\n/g; s/,/\n/g')
version=$(sed -n 's/.*"caddy_version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$tokens" | head -n 1)
if [ -z "$version" ]; then
	echo "xcaddy.json: no caddy_version" >&2
	exit 1
fi
# The plugins, one "module_path =version" a line, in the file's order.
plugins=$(awk '
	/^[{]$/ { m = ""; v = ""; next }
	/^[}]$/ { if (m != "") print m " =" v; m = ""; v = ""; next }
	/"module_path"[[:space:]]*:/ { sub(/.*"module_path"[[:space:]]*:[[:space:]]*"/, ""); sub(/".*/, ""); m = $0 }
	/"version"[[:space:]]*:/ { sub(/.*"version"[[:space:]]*:[[:space:]]*"/, ""); sub(/".*/, ""); v = $0 }
' <<<"$tokens")
if ! grep -q "^$self =" <<<"$plugins"; then
	echo "xcaddy.json: $self is not among the plugins" >&2
	exit 1
fi
args=()
while read -r module ver; do
	[ -n "$module" ] || continue
	ver=${ver#=}
	if [ -z "$ver" ] && [ "$module" = "$self" ]; then
		args+=(--with "$module@v0.0.0=.") # a version that no lookup needs: the tree replaces it
	elif [ -n "$ver" ]; then
		args+=(--with "$module@$ver")
	else
		args+=(--with "$module")
	fi
done <<<"$plugins"
go tool xcaddy build "$version" "${args[@]}" --output "$out"
