package cyclos

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzCallbackParams: any query or form body of a Cyclos callback is read
// without panicking, and the query wins when it names a ticket.
func FuzzCallbackParams(f *testing.F) {
	f.Add("orderId=r1&ticketNumber=t1", "")
	f.Add("", "orderId=r1&ticketNumber=t1")
	f.Add("ticketNumber=", "%zz")
	f.Add("orderId=a;b", "orderId=%")
	f.Fuzz(func(t *testing.T, query, body string) {
		r := httptest.NewRequest(http.MethodPost, "/_checkout/webhook/cyclos", nil)
		r.URL.RawQuery = query
		ref, ticket := callbackParams(r, []byte(body))
		if q, err := url.ParseQuery(query); err == nil && q.Get("ticketNumber") != "" {
			if ref != q.Get("orderId") || ticket != q.Get("ticketNumber") {
				t.Fatalf("query %q read as %q %q", query, ref, ticket)
			}
		}
	})
}
