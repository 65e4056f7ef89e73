package vouchersafe_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/vouchertest"
	"github.com/caddy-checkout/checkout/providers/vouchersafe"
)

func TestWireFormatRoundTrip(t *testing.T) {
	secret, err := vouchersafe.NewSecret(12)
	if err != nil || len(secret) != 12 || strings.Trim(secret, "0123456789abcdef") != "" {
		t.Fatalf("secret %q %v", secret, err)
	}
	other, _ := vouchersafe.NewSecret(12)
	if other == secret {
		t.Fatal("two secrets alike")
	}
	for _, n := range []int{7, 25} {
		if _, err := vouchersafe.NewSecret(n); err == nil {
			t.Errorf("secret of %d digits accepted", n)
		}
	}
	info := vouchersafe.OrderInfo{Payee: "mymerchantsafe-1234@vouchi.com", Amount: "19.95", Currency: "CAD", Issuer: "VI-USV",
		Subject: "Your order #A-1 from Example Shop", Baggage: map[string]string{"orderId": "abc"}}
	data, err := vouchersafe.Encrypt(info, secret)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := vouchersafe.Encrypt(info, secret)
	if again == data {
		t.Fatal("two messages alike: the IV is not fresh")
	}
	got, err := vouchersafe.Decrypt(data, secret)
	if err != nil || got.Payee != info.Payee || got.Amount != "19.95" || got.Baggage["orderId"] != "abc" {
		t.Fatalf("decrypted %+v %v", got, err)
	}
	if _, err := vouchersafe.Decrypt(data, other); !errors.Is(err, vouchersafe.ErrBadCode) {
		t.Fatalf("another code opened the message: %v", err)
	}
	if _, err := vouchersafe.Decrypt("not base64!", secret); !errors.Is(err, vouchersafe.ErrBadCode) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestParseLine(t *testing.T) {
	p, err := vouchersafe.ParseLine(`{ "PAYER":"joecustomer-2345@vouchi.com", "AMOUNT":21.24, "UNITS":"USV", "ASSET":"USV", "ISSUER":"VI-USV", "orderId":3456 }`)
	if err != nil || p.Payer != "joecustomer-2345@vouchi.com" || p.Amount != "21.24" || p.Units != "USV" || p.Issuer != "VI-USV" || p.Baggage["orderId"] != "3456" {
		t.Fatalf("the seed's example: %+v %v", p, err)
	}
	if _, err := vouchersafe.ParseLine("NOT FOUND"); !errors.Is(err, vouchersafe.ErrNotFound) {
		t.Fatalf("NOT FOUND: %v", err)
	}
	for _, bad := range []string{"", "ERROR: login failed", "{}", "[1]",
		// An altered client's baggage must not pass for the payment's fields.
		`{"PAYER":"x","AMOUNT":"0.01","UNITS":"USD","ISSUER":"JUNK","orderId":"r","AMOUNT":"19.95","ISSUER":"VI-USV"}`,
		`{"PAYER":"x","AMOUNT":"0.01","UNITS":"USD","ISSUER":"VI-USV","orderId":"r","amount":"19.95"}`, `{"PAYER":"x"}`, `{"PAYER":"x","AMOUNT":1,"UNITS":"USD","ISSUER":"I","o":{"a":1}}`, `{"PAYER":"x","AMOUNT":1,"UNITS":"USD","ISSUER":"I"} {}`} {
		if _, err := vouchersafe.ParseLine(bad); err == nil || errors.Is(err, vouchersafe.ErrNotFound) {
			t.Errorf("%q: %v, want an error", bad, err)
		}
	}
}

func TestPickupAgainstTheFakeCLI(t *testing.T) {
	cli := vouchertest.CLI(t)
	safe := vouchertest.NewSafe(t)
	t.Setenv("VOUCHERTEST_SAFE", safe.Path)
	t.Setenv("VOUCHERTEST_LOCK_WAIT", "0s") // an overlap would fail at once
	p, err := vouchersafe.NewPickup([]string{cli, "-x", "ofs.vm.to:5233", "-w", "-b", "{key}:{value}"}, 10*time.Second, "merchant-"+t.Name()+"@vouchi.com")
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(context.Background(), "ref1")
	if err != nil || out.Line != "NOT FOUND" {
		t.Fatalf("empty safe: %+v %v", out, err)
	}
	safe.Receive(vouchertest.Payment{Payer: "joe-1@vouchi.com", Amount: "19.95", Units: "CAD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": "ref1"}})
	out, err = p.Run(context.Background(), "ref1")
	pay, perr := vouchersafe.ParseLine(out.Line)
	if err != nil || perr != nil || pay.Baggage["orderId"] != "ref1" || pay.Amount != "19.95" || safe.Len() != 0 {
		t.Fatalf("found: %+v %v %v, safe has %d", out, err, perr, safe.Len())
	}
	// Taken out: a second pickup finds nothing.
	if out, _ := p.Run(context.Background(), "ref1"); out.Line != "NOT FOUND" {
		t.Fatalf("second pickup: %+v", out)
	}

	// Five pickups at once run one after the other (with no login wait,
	// an overlap would print an error).
	for i := 0; i < 5; i++ {
		safe.Receive(vouchertest.Payment{Payer: "joe-1@vouchi.com", Amount: "1", Units: "USD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": "many" + string(rune('a'+i))}})
	}
	t.Setenv("VOUCHERTEST_DELAY", "50ms")
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := p.Run(context.Background(), "many"+string(rune('a'+i)))
			if err == nil {
				_, err = vouchersafe.ParseLine(out.Line)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pickup %d: %v", i, err)
		}
	}
	runs := safe.Runs()
	for i := 1; i < len(runs); i++ {
		for j := 0; j < i; j++ {
			if runs[i][0].Before(runs[j][1]) && runs[j][0].Before(runs[i][1]) {
				t.Fatalf("pickups %d and %d overlapped", j, i)
			}
		}
	}

	// A pickup waiting for the safe gives up when its caller does.
	t.Setenv("VOUCHERTEST_DELAY", "2s")
	held := make(chan struct{})
	go func() { p.Run(context.Background(), "holder"); close(held) }()
	for wait := time.Now().Add(10 * time.Second); !lockHeld(safe.Path); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the first pickup never took the safe")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	if _, err := p.Run(ctx, "waiter"); !errors.Is(err, vouchersafe.ErrBusy) || time.Since(start) > time.Second {
		t.Fatalf("a waiting pickup past its deadline: %v after %s", err, time.Since(start))
	}
	cancel()
	<-held

	// A pickup that takes longer than pickup_timeout is stopped.
	t.Setenv("VOUCHERTEST_DELAY", "5s")
	slow, _ := vouchersafe.NewPickup(p.Args, 200*time.Millisecond, "slow-"+t.Name())
	if _, err := slow.Run(context.Background(), "x"); !errors.Is(err, vouchersafe.ErrTimeout) {
		t.Fatalf("slow pickup: %v", err)
	}
	t.Setenv("VOUCHERTEST_DELAY", "")
	t.Setenv("VOUCHERTEST_FAIL", "login failed")
	if out, err := p.Run(context.Background(), "x"); err == nil || out.Exit != 1 || !strings.Contains(out.Line, "login failed") {
		t.Fatalf("failing CLI: %+v %v", out, err)
	}
}

func TestPickupNeverUsesAShell(t *testing.T) {
	cli := vouchertest.CLI(t)
	safe := vouchertest.NewSafe(t)
	t.Setenv("VOUCHERTEST_SAFE", safe.Path)
	p, _ := vouchersafe.NewPickup([]string{cli, "-w", "-b", "{key}:{value}"}, 5*time.Second, "noshell")
	// A value with shell syntax reaches the CLI as one argument, literally.
	out, err := p.Run(context.Background(), "x; touch /tmp/pwned-$(id -u)")
	if err != nil || out.Line != "NOT FOUND" {
		t.Fatalf("%+v %v", out, err)
	}
	for _, bad := range [][]string{nil, {"voucher-cli", "-w", "-b", "{key}:x"}} {
		if err := vouchersafe.CheckCommand(bad); err == nil {
			t.Errorf("pickup_command %q accepted", bad)
		}
	}
}

func TestCodePNG(t *testing.T) {
	img, err := vouchersafe.CodePNG("3f9a6c0e5b2d")
	if err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	// Dark pixels drawn: the digits are there, and two codes differ.
	dark := func(m image.Image) int {
		n := 0
		for y := m.Bounds().Min.Y; y < m.Bounds().Max.Y; y++ {
			for x := m.Bounds().Min.X; x < m.Bounds().Max.X; x++ {
				if r, _, _, _ := m.At(x, y).RGBA(); r < 0x8000 {
					n++
				}
			}
		}
		return n
	}
	other, _ := vouchersafe.CodePNG("111111111111")
	m2, _ := png.Decode(bytes.NewReader(other))
	if d := dark(m); d == 0 || d == dark(m2) || m.Bounds().Dx() < 200 {
		t.Fatalf("code image: %d dark pixels (other code %d), %v", d, dark(m2), m.Bounds())
	}
}

// lockHeld reports whether a fake CLI holds the safe's login lock.
func lockHeld(safe string) bool {
	f, err := os.OpenFile(safe+".lock", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
