#!/usr/bin/env bash
# Requests/s through `checkout` + `reverse_proxy` against plain
# `reverse_proxy` on a route that is not a checkout route, same binary,
# same run, alternating A,B,B,A,A,B,... (-order abba; -order ab for plain
# A,B,A,B); prints each round, the medians and the ratio B/A (target:
# >= 0.98), the per-pair ratios with a 95% interval, and CPU per request.
# On the shared 2-core VM one round's req/s moves by +-20% from host noise,
# so many short alternating rounds beat a few long ones (about 4 minutes).
# Extra arguments go to the program and override these, e.g.
#   scripts/bench-proxy.sh -rounds 3 -duration 5s -cpuprofile /tmp/proxyprof
# Loopback only; every round is bounded in time and requests.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./internal/bench/proxyratio -rounds 40 -duration 2s -warmup 500ms -conns 32 -loadgen process -order abba "$@"
