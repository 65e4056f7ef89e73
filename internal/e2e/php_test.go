package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/sign"
)

// findPHPFPM returns Debian's php-fpm. A missing one fails the test under
// CI=true and skips it elsewhere.
func findPHPFPM(t *testing.T) string {
	t.Helper()
	if found, _ := filepath.Glob("/usr/sbin/php-fpm*"); len(found) > 0 {
		return found[0]
	}
	if p, err := exec.LookPath("php-fpm"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no php-fpm (scripts/test.sh installs Debian's php-fpm)")
	}
	t.Skip("no php-fpm: install Debian's php-fpm (scripts/test.sh does) to run the php_fastcgi test")
	return ""
}

// readmeSnippet is the first ```lang block under "#### heading" of the
// README, verbatim: the code the README tells shops to use.
func readmeSnippet(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n#### "+heading+"\n")
	if ok {
		_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	}
	code, _, ok2 := strings.Cut(rest, "\n```")
	if !ok || !ok2 {
		t.Fatalf("README.md has no ```%s block under #### %s", lang, heading)
	}
	return code
}

// phpShop is a PHP shop with no payment code: /buy answers with the
// X-Checkout-* headers, /thanks checks the paid headers with the README's
// snippet, /echo shows every X-Checkout-ish variable PHP received.
const phpShop = `<?php
require __DIR__ . '/readme.php';
$path = strtok($_SERVER['REQUEST_URI'], '?');
if ($path === '/buy') {
    header('X-Checkout-Order: php-' . time());
    header('X-Checkout-Amount: 9.50');
    header('X-Checkout-Currency: USD');
    echo 'payment required';
} elseif ($path === '/thanks') {
    echo checkout_paid(getenv('CHECKOUT_SECRET')) ? 'VERIFIED PAID ' . $_SERVER['HTTP_X_CHECKOUT_ORDER'] : 'NOT PAID';
} elseif ($path === '/echo') {
    foreach ($_SERVER as $k => $v) {
        if (stripos(strtr($k, '-.', '__'), 'X_CHECKOUT') !== false) {
            echo "$k=$v\n";
        }
    }
    echo 'END';
}
`

// startPHPFPM runs php-fpm on loopback with the secret in its environment
// and returns its address.
func startPHPFPM(t *testing.T, fpm, secret string) string {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := fmt.Sprintf("[global]\nerror_log = %s/fpm.log\ndaemonize = no\n\n[www]\nlisten = %s\npm = static\npm.max_children = 4\nclear_env = no\ncatch_workers_output = yes\n", dir, addr)
	if err := os.WriteFile(filepath.Join(dir, "fpm.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-F", "-y", filepath.Join(dir, "fpm.conf"), "-p", dir}
	if os.Geteuid() == 0 {
		args = append(args, "-R") // its workers run as root too; the test machine's only user
	}
	cmd := exec.Command(fpm, args...)
	cmd.Env = append(os.Environ(), "CHECKOUT_SECRET="+secret)
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "fpm.log"))
			t.Logf("php-fpm's log:\n%s", b)
		}
	})
	waitFor(t, 15*time.Second, "php-fpm to listen on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// TestPHPShopBehindPHPFastCGI: a PHP shop behind php_fastcgi and a real
// php-fpm takes a payment with three headers, verifies the paid return
// with the README's PHP snippet, and never sees a client's X-Checkout-*
// header, whatever its spelling.
func TestPHPShopBehindPHPFastCGI(t *testing.T) {
	fpm := findPHPFPM(t)
	secret := sign.NewSecret()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.php"), []byte(phpShop), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "readme.php"), []byte("<?php\n"+readmeSnippet(t, "PHP", "php")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fpmAddr := startPHPFPM(t, fpm, secret)
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	loadCaddy(t, fmt.Sprintf(`{
	admin off
	checkout {
		storage bolt %s
	}
}

http://%s {
	root * %s
	checkout {
		secret %s
		success_url /thanks
		sandbox
	}
	php_fastcgi %s
}
`, filepath.Join(t.TempDir(), "checkout.db"), base, root, secret, fpmAddr))
	t.Cleanup(func() { _ = caddy.Stop() })
	site := "http://" + base

	// Spoofing: no spelling of a client's X-Checkout-* header reaches PHP.
	req, _ := http.NewRequest(http.MethodGet, site+"/echo", nil)
	for _, name := range []string{"X-Checkout-Status", "X_Checkout_Status", "x-checkout-order", "X-CHECKOUT-SIGNATURE", "X-Checkout_Amount", "X.Checkout.Currency", "X-Checkout-Transaction"} {
		req.Header[name] = []string{"paid"}
	}
	req.Header.Set("Connection", "keep-alive, X-Checkout-Status")
	resp, err := noRedirectClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "END" {
		t.Fatalf("PHP received client X-Checkout-* variables (%d %v):\n%s", resp.StatusCode, resp.Header, got)
	}

	// A payment: the shop's three headers, the sandbox, the return to
	// /thanks, verified by the README's snippet in real PHP.
	c := noRedirectClient()
	r, _ := send(t, c, http.MethodPost, site+"/buy", url.Values{})
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/_checkout/sandbox/") {
		t.Fatalf("buy through php_fastcgi: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	abs := func(loc string) string {
		if strings.HasPrefix(loc, "/") {
			return site + loc
		}
		return loc
	}
	sb := abs(r.Header.Get("Location"))
	r, page := send(t, c, http.MethodGet, sb, nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("sandbox page: %d", r.StatusCode)
	}
	r, _ = send(t, c, http.MethodPost, sb, url.Values{"csrf": {m[1]}, "outcome": {"paid"}}, "Origin", site)
	r, _ = send(t, c, http.MethodGet, abs(r.Header.Get("Location")), nil)
	thanks := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(thanks, "/thanks?checkout_token=") {
		t.Fatalf("return: %d %q", r.StatusCode, thanks)
	}
	if _, body := send(t, c, http.MethodGet, site+thanks, nil); !strings.HasPrefix(body, "VERIFIED PAID php-") {
		t.Fatalf("the README's PHP snippet did not verify the paid return: %q", body)
	}
	// The same token again, a forged signature, or none: not paid.
	if _, body := send(t, c, http.MethodGet, site+thanks, nil); body != "NOT PAID" {
		t.Fatalf("a spent token: %q", body)
	}
	if _, body := send(t, c, http.MethodGet, site+"/thanks", nil, "X-Checkout-Status", "paid", "X-Checkout-Signature", "t=1,v1="+strings.Repeat("0", 64)); body != "NOT PAID" {
		t.Fatalf("forged headers: %q", body)
	}
}
