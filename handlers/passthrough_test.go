package handlers_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers/handlerstest"
)

func TestNonCheckoutResponsesPassThrough(t *testing.T) {
	e := handlerstest.New(t)
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Shop", "kept")
		w.Header().Set("X-Checkout-Amount", "5.00") // no order header: not an order, but never shown
		w.Header().Set("x_checkout_internal", "1")
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("short and stout"))
	}))
	r := e.Get(nil, "/teapot")
	if r.Code != http.StatusTeapot || r.Body != "short and stout" || r.Header.Get("X-Shop") != "kept" {
		t.Fatalf("pass-through changed the response: %d %q %v", r.Code, r.Body, r.Header)
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-checkout-") {
			t.Fatalf("response header %s reached the client", k)
		}
	}
	if e.OrderCount() != 0 {
		t.Fatal("a response without X-Checkout-Order made an order")
	}
}

func TestStreamingResponsesAreNotBuffered(t *testing.T) {
	e := handlerstest.New(t)
	release := make(chan struct{})
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: first\n\n"))
		http.NewResponseController(w).Flush()
		<-release
		w.Write([]byte("data: second\n\n"))
	}))
	resp, err := http.Get(e.Abs("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(resp.Body).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l != "data: first\n" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first flushed chunk did not arrive while the upstream was still writing")
	}
	close(release)
}

// TestSpoofedFieldsInAnySpellingOrTrailerNeverReachTheShop: a client's
// X.Checkout.Status (which CGI hosts read as HTTP_X_CHECKOUT_STATUS) and an
// X-Checkout-Status request trailer are removed like the plain header.
func TestSpoofedFieldsInAnySpellingOrTrailerNeverReachTheShop(t *testing.T) {
	e := handlerstest.New(t)
	seen := make(chan http.Header, 1)
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // trailers arrive after the body
		got := r.Header.Clone()
		for k, v := range r.Trailer {
			got["Trailer:"+k] = v
		}
		seen <- got
	}))
	body := io.MultiReader(strings.NewReader("a=1")) // unknown length: sent chunked, with trailers
	req, _ := http.NewRequest(http.MethodPost, e.Abs("/orders/9/thanks"), body)
	req.Header["X.Checkout.Status"] = []string{"paid"}
	req.Header["X_checkout.Signature"] = []string{"t=1,v1=00"}
	req.Trailer = http.Header{"X-Checkout-Status": {"paid"}, "X-Other": {"kept"}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-seen
	for k := range got {
		norm := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(strings.TrimPrefix(k, "Trailer:")))
		if strings.HasPrefix(norm, "x-checkout-") {
			t.Errorf("%s reached the shop", k)
		}
	}
	if got.Get("Trailer:X-Other") != "kept" {
		t.Errorf("an unrelated trailer was removed: %v", got)
	}
}
