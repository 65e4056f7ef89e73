#!/usr/bin/env bash
# Header intake -> durable order -> 303 at a fixed arrival rate (open loop)
# through Caddy, against the same load straight to the shop and through
# plain reverse_proxy; prints achieved rate and p50/p99/p99.9 latency and
# the latency checkout adds (target: 5000 orders/s, p99 added < 10 ms).
# Extra arguments go to the program and override these, e.g. a sweep:
#   scripts/bench-intake.sh -rate 1000,2000,2500 -phases proxy,checkout
# Then the in-process benchmark (closed loop, saturation throughput):
#   go test ./handlers -run '^$' -bench HeaderIntake -benchtime 5s
# Loopback only; every phase is bounded in time and requests.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./internal/bench/intakerate -rate 5000 -duration 10s -warmup 2s -conns 256 -loadgen process "$@"
