// Command voucher-cli is the fake Voucher-Safe CLI of package vouchertest,
// for tests.
package main

import (
	"os"

	"github.com/caddy-checkout/checkout/internal/vouchertest"
)

func main() {
	os.Exit(vouchertest.Main(os.Args[1:], os.Stdout, os.Stderr))
}
