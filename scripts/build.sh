#!/usr/bin/env bash
# Builds dist/caddy from xcaddy.json (Caddy version and plugins), as xcaddy would.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./internal/xbuild -manifest xcaddy.json -o "${1:-dist/caddy}"
