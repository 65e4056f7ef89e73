package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/templates"
)

// screenshotDirEnv names a folder that keeps the browser test's screenshots
// for a person to look at; without it they go to the test's temp dir.
const screenshotDirEnv = "CHECKOUT_E2E_SCREENSHOTS"

// findChromium returns the Chromium to drive. A missing browser fails the
// test under CI=true and skips it elsewhere.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH (scripts/test.sh installs Debian's chromium)")
	}
	t.Skip("no Chromium on PATH: install Debian's chromium (scripts/test.sh does) to run the browser test")
	return ""
}

// console collects what a tab writes to its console: console API calls,
// uncaught exceptions and browser log entries, where Chromium reports CSP
// violations ("... violates the following Content Security Policy ...").
type console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
	done chan struct{}
}

// watchConsole subscribes to the console of tab; stop the tab's context,
// then call wait, before reading.
func watchConsole(tab context.Context) *console {
	c := &console{done: make(chan struct{})}
	msgs := chromedp.Console(tab) // subscribes now: nothing after this is lost
	go func() {
		defer close(c.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *console) wait() []chromedp.ConsoleMessage {
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), c.msgs...)
}

func cspViolations(msgs []chromedp.ConsoleMessage) []string {
	var out []string
	for _, m := range msgs {
		if strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// requests records the URLs a tab asks for, to tell whether the page's
// script was loaded (it is not with JavaScript off).
type requests struct {
	mu   sync.Mutex
	urls []string
}

func watchRequests(tab context.Context) *requests {
	r := &requests{}
	evs := chromedp.Events(tab, network.RequestWillBeSent)
	go func() {
		for ev, err := range evs {
			if err != nil {
				return
			}
			r.mu.Lock()
			r.urls = append(r.urls, ev.Request.URL)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *requests) any(re *regexp.Regexp) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.urls {
		if re.MatchString(u) {
			return true
		}
	}
	return false
}

var (
	sandboxPathRE = regexp.MustCompile(`^/_checkout/sandbox/[0-9A-Za-z]+$`)
	thanksPathRE  = regexp.MustCompile(`^/orders/[^/]+/thanks$`)
	liveJSRE      = regexp.MustCompile(`/live(\.[0-9a-f]+)?\.js(\?|$)`)
)

// startChromium starts a headless Chromium for the test, closed when it
// ends, and returns its browser context.
func startChromium(t *testing.T, exe string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1024, 768),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		// chromedp makes and removes a temporary --user-data-dir itself.
	)
	t.Cleanup(cancelAlloc)
	browser, closeBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(closeBrowser)
	if err := chromedp.Do(browser); err != nil { // starts Chromium
		t.Fatalf("starting %s: %v", exe, err)
	}
	return browser
}

// TestBrowserCheckout drives the demo flow in headless Chromium as a
// customer clicks it: the shop's Buy, the sandbox page's Pay, the shop's
// thank-you page. It runs once with JavaScript and once without (every step
// is a plain form), and checks that no page breaks its Content Security
// Policy.
func TestBrowserCheckout(t *testing.T) {
	exe := findChromium(t)
	p := startInProcess(t)
	base := "http://" + p.base
	shots := t.TempDir()
	if d := os.Getenv(screenshotDirEnv); d != "" {
		shots = d
	}

	browser := startChromium(t, exe)

	t.Run("csp violations are seen", func(t *testing.T) {
		// The console check below means something only if a violation of
		// this very policy reaches it: a page under the pages' CSP with an
		// inline script and a style attribute.
		canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", templates.CSP(nil))
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><title>canary</title><p id="x" style="color:red">x</p><script>document.title="ran"</script>`)
		}))
		defer canary.Close()
		tab, closeTab := chromedp.NewContext(browser)
		con := watchConsole(tab)
		err := chromedp.Do(tab, chromedp.Navigate(canary.URL), chromedp.WaitVisible(chromedp.ID("x")))
		title, terr := chromedp.Run(tab, chromedp.Title())
		// Give the log entries of the load a moment to arrive.
		deadline := time.Now().Add(5 * time.Second)
		for err == nil && time.Now().Before(deadline) {
			con.mu.Lock()
			n := len(cspViolations(con.msgs))
			con.mu.Unlock()
			if n > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		closeTab()
		msgs := con.wait()
		if err != nil || terr != nil {
			t.Fatalf("canary page: %v %v", err, terr)
		}
		if title == "ran" {
			t.Fatal("the CSP did not block an inline script")
		}
		v := cspViolations(msgs)
		if len(v) == 0 {
			t.Fatalf("the console showed no CSP violation of the canary page (inline script, style attribute); console: %q", msgs)
		}
		t.Logf("canary: %s", strings.Join(v, "\n"))
	})

	for _, run := range []struct {
		name, product, label string
		js                   bool
	}{
		{"javascript on", "tee", "Gopher T-shirt", true},
		{"javascript off", "mug", "Caddy mug", false},
	} {
		t.Run(run.name, func(t *testing.T) {
			// A browser context of its own: no cookies or cache shared with
			// the other run.
			tab, closeTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
			defer closeTab()
			con := watchConsole(tab)
			reqs := watchRequests(tab)
			if !run.js {
				if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled,
					emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
					t.Fatalf("disabling JavaScript: %v", err)
				}
			}
			where := func() *url.URL {
				t.Helper()
				loc, err := chromedp.Run(tab, chromedp.Location())
				if err != nil {
					t.Fatalf("location: %v", err)
				}
				u, err := url.Parse(loc)
				if err != nil {
					t.Fatal(err)
				}
				return u
			}
			shot := func(name string) {
				t.Helper()
				png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatalf("screenshot %s: %v", name, err)
				}
				path := filepath.Join(shots, strings.ReplaceAll(run.name, " ", "-")+"-"+name+".png")
				if err := os.WriteFile(path, png, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("screenshot: %s", path)
			}

			// The shop, through Caddy: find the product by its name and
			// press its Buy button.
			buy := chromedp.Search(fmt.Sprintf(`//li[contains(., %q)]//button[normalize-space()="Buy"]`, run.label))
			if err := chromedp.Do(tab, chromedp.Navigate(base+"/"), chromedp.Click(buy)); err != nil {
				t.Fatalf("buying %s at the shop: %v", run.product, err)
			}

			// The sandbox's hosted page.
			pay := chromedp.Search(`//button[normalize-space()="Pay"]`)
			if err := chromedp.Do(tab, chromedp.WaitVisible(pay)); err != nil {
				t.Fatalf("waiting for the sandbox page: %v", err)
			}
			if u := where(); u.Host != p.base || !sandboxPathRE.MatchString(u.Path) {
				t.Fatalf("after Buy the browser is at %s, want %s/_checkout/sandbox/{ref}", u, base)
			}
			shot("sandbox")
			if err := chromedp.Do(tab, chromedp.Click(pay)); err != nil {
				t.Fatalf("pressing Pay: %v", err)
			}

			// Back at the shop's thank-you page.
			if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("result"))); err != nil {
				t.Fatalf("waiting for the thank-you page: %v", err)
			}
			if u := where(); u.Host != p.base || !thanksPathRE.MatchString(u.Path) {
				t.Fatalf("after Pay the browser is at %s, want %s/orders/{id}/thanks", u, base)
			}
			result, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("result")))
			if err != nil {
				t.Fatalf("reading #result: %v", err)
			}
			if !strings.Contains(result, "paid") || strings.Contains(result, "no verified payment") {
				t.Fatalf("#result says %q, want the order paid", result)
			}
			shot("thanks")

			// JavaScript was really on, or really off: the pages' one
			// script is loaded only when it may run.
			if got := reqs.any(liveJSRE); got != run.js {
				t.Errorf("live.js requested: %v, want %v (JavaScript on: %v)", got, run.js, run.js)
			}

			closeTab()
			msgs := con.wait()
			for _, m := range msgs {
				t.Logf("console: %s (%s)", m, m.URL)
			}
			if v := cspViolations(msgs); len(v) > 0 {
				t.Errorf("CSP violations in the console:\n%s", strings.Join(v, "\n"))
			}
			for _, m := range msgs {
				if m.IsException() {
					t.Errorf("uncaught exception: %s", m)
				}
			}
		})
	}
}

// TestBrowserKomojuRedirect drives the pay page in headless Chromium with
// two providers offered: choosing KOMOJU posts the pay page's form, which is
// answered with a redirect to KOMOJU's page. Browsers apply the page's CSP
// form-action to that redirect, so it must name KOMOJU's origin; then the
// customer pays by card and lands at the shop as paid.
func TestBrowserKomojuRedirect(t *testing.T) {
	exe := findChromium(t)
	fake := komojutest.New(t)
	t.Setenv("E2E_KOMOJU_KEY", komojutest.SecretKey)
	site := startProviderSite(t, "\t\tkomoju {\n"+
		"\t\t\tsecret_key {env.E2E_KOMOJU_KEY}\n"+
		"\t\t\twebhook_secret browser-test-webhook-token\n"+
		"\t\t\tapi_url "+fake.URL+"\n"+
		"\t\t}\n\t\tsandbox\n")
	fake.SetWebhook("http://"+site.base+"/_checkout/webhook/komoju", "browser-test-webhook-token")
	browser := startChromium(t, exe)
	tab, closeTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer closeTab()
	con := watchConsole(tab)

	buy := chromedp.Search(`//li[contains(., "Sencha tea")]//button[normalize-space()="Buy"]`)
	komoju := chromedp.Search(`//button[@name="provider" and @value="komoju"]`)
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+site.base+"/"), chromedp.Click(buy), chromedp.WaitVisible(komoju)); err != nil {
		t.Fatalf("buying, then the pay page: %v", err)
	}
	payByCard := chromedp.Search(`//button[@value="credit_card"]`)
	if err := chromedp.Do(tab, chromedp.Click(komoju), chromedp.WaitVisible(payByCard)); err != nil {
		loc, _ := chromedp.Run(tab, chromedp.Location())
		t.Fatalf("choosing KOMOJU did not reach its page (at %s): %v", loc, err)
	}
	if err := chromedp.Do(tab, chromedp.Click(payByCard), chromedp.WaitVisible(chromedp.ID("result"))); err != nil {
		t.Fatalf("paying on KOMOJU's page, then the shop: %v", err)
	}
	result, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("result")))
	if err != nil || !strings.Contains(result, "paid") || strings.Contains(result, "no verified payment") {
		t.Fatalf("#result says %q (%v), want the order paid", result, err)
	}
	closeTab()
	if v := cspViolations(con.wait()); len(v) > 0 {
		t.Errorf("CSP violations in the console:\n%s", strings.Join(v, "\n"))
	}
}
