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
version=$(sed -n 's/.*"caddy_version": *"\([^"]*\)".*/\1/p' xcaddy.json)
if [ -z "$version" ]; then
	echo "xcaddy.json: no caddy_version" >&2
	exit 1
fi
# The plugins, one "module_path version" pair a line, in the file's order.
plugins=$(sed -n -e 's/.*"module_path": *"\([^"]*\)".*/\1/p' -e 's/.*"version": *"\([^"]*\)".*/=\1/p' xcaddy.json |
	paste -d' ' - -)
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
