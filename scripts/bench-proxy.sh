#!/usr/bin/env bash
# Requests/s through `checkout` + `reverse_proxy` against plain
# `reverse_proxy` on a route that is not a checkout route, same binary,
# same run, alternating A,B,A,B; prints each round, the medians and the
# ratio B/A (target: >= 0.98). Extra arguments go to the program, e.g.
#   scripts/bench-proxy.sh -rounds 9 -duration 5s -cpuprofile /tmp/proxyprof
# Loopback only; every round is bounded in time and requests.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./internal/bench/proxyratio -rounds 7 -duration 5s -warmup 1s -conns 32 -loadgen process "$@"
