package handlerstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// BuyReceipt buys a priced path of the site at base (http://host:port)
// once, as a program and the person paying for it would: the 402 answer,
// pay_url, the sandbox's Pay button, then receipt_url. It returns the
// receipt. The site must offer the sandbox; benchmarks use it to get a
// receipt to send.
func BuyReceipt(site, path string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, u string, form url.Values, accept string) (*http.Response, string, error) {
		if strings.HasPrefix(u, "/") {
			u = site + u
		}
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			return nil, "", err
		}
		req.Header.Set("Accept", accept)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", site)
		}
		r, err := c.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		return r, string(b), err
	}
	page := func(u string) (string, error) {
		r, body, err := do("GET", u, nil, "text/html")
		if err != nil {
			return "", err
		}
		m := csrfRE.FindStringSubmatch(body)
		if r.StatusCode != 200 || m == nil {
			return "", fmt.Errorf("GET %s: %d, no form", u, r.StatusCode)
		}
		return m[1], nil
	}
	r, body, err := do("GET", path, nil, "*/*")
	if err != nil {
		return "", err
	}
	var need struct {
		PayURL     string `json:"pay_url"`
		ReceiptURL string `json:"receipt_url"`
	}
	if err := json.Unmarshal([]byte(body), &need); err != nil || r.StatusCode != http.StatusPaymentRequired {
		return "", fmt.Errorf("GET %s: %d %q, want 402 JSON", path, r.StatusCode, body)
	}
	csrf, err := page(need.PayURL)
	if err != nil {
		return "", err
	}
	r, _, err = do("POST", need.PayURL, url.Values{"csrf": {csrf}, "provider": {"sandbox"}}, "text/html")
	if err != nil || r.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("choosing the sandbox: %v %v", r, err)
	}
	sandbox := r.Header.Get("Location")
	if csrf, err = page(sandbox); err != nil {
		return "", err
	}
	r, _, err = do("POST", sandbox, url.Values{"csrf": {csrf}, "outcome": {"paid"}}, "text/html")
	if err != nil || r.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("paying in the sandbox: %v %v", r, err)
	}
	if _, _, err = do("GET", r.Header.Get("Location"), nil, "text/html"); err != nil {
		return "", err
	}
	r, body, err = do("GET", need.ReceiptURL, nil, "application/json")
	if err != nil {
		return "", err
	}
	var got struct{ Receipt string }
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Receipt == "" {
		return "", fmt.Errorf("receipt_url: %d %q", r.StatusCode, body)
	}
	return got.Receipt, nil
}
