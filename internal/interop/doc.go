// Package interop holds no code: its test checks caddy-checkout's
// signatures against implementations that are not ours, the
// standardwebhooks npm package (node/) and a Python verifier written from
// the specifications' text (verify.py). See interop_test.go.
package interop
