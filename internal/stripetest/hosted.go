// The hosted payment page at a session's url, so an end-to-end test can click
// through Checkout as a customer: Pay, Pay later (konbini) or Cancel.
package stripetest

import (
	"html/template"
	"net/http"
	"strings"
	"time"
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}} (stripetest)</title></head>
<body>
<h1>{{.Title}}</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Open}}
<ul>
{{range .Items}}<li>{{.Name}} × {{.Quantity}}</li>
{{end}}</ul>
<p>Total: <strong id="amount">{{.Amount}}</strong></p>
<form method="post">
<button type="submit" name="action" value="pay">Pay</button>
<button type="submit" name="action" value="pay_later">Pay later (konbini)</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form>
{{end}}
</body>
</html>
`))

type pageItem struct {
	Name     string
	Quantity int64
}

type pageData struct {
	Title   string
	Message string
	Open    bool
	Amount  string
	Items   []pageItem
}

// pageState is what the page shows for a session now, and with which status.
func (s *Server) pageState(id string) (int, pageData, *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.sessions[id]
	switch {
	case x == nil:
		return http.StatusNotFound, pageData{Title: "Not found", Message: "No such Checkout Session."}, nil
	case x.status == "expired" || x.status == "open" && !s.now().Before(time.Unix(x.expiresAt, 0)):
		return http.StatusGone, pageData{Title: "Expired", Message: "This Checkout Session has expired."}, x
	case x.status == "complete" && x.paymentStatus == "paid":
		return http.StatusOK, pageData{Title: "Paid", Message: "This Checkout Session is already paid."}, x
	case x.status == "complete":
		return http.StatusOK, pageData{Title: "Awaiting payment", Message: "This Checkout Session is complete; the payment is pending."}, x
	}
	d := pageData{Title: "Pay", Open: true, Amount: formatAmount(x.amountTotal, x.currency)}
	for _, it := range x.items {
		d.Items = append(d.Items, pageItem{Name: it.name, Quantity: it.quantity})
	}
	return http.StatusOK, d, x
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	status, d, _ := s.pageState(r.PathValue("id"))
	renderPage(w, status, d)
}

func (s *Server) servePagePost(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// x's URLs are read below without the lock: they never change after
	// creation.
	status, d, x := s.pageState(id)
	if !d.Open {
		renderPage(w, status, d)
		return
	}
	switch r.PostFormValue("action") {
	case "cancel":
		if x.cancelURL == "" {
			// Stripe shows no way back when the session has no cancel_url.
			renderPage(w, http.StatusBadRequest, pageData{Title: "Pay", Message: "This Checkout Session has no cancel_url."})
			return
		}
		http.Redirect(w, r, x.cancelURL, http.StatusSeeOther)
		return
	case "pay":
		_, err := s.Pay(id)
		if err != nil {
			renderPage(w, http.StatusConflict, pageData{Title: "Not paid", Message: err.Error()})
			return
		}
	case "pay_later":
		_, err := s.PayLater(id)
		if err != nil {
			renderPage(w, http.StatusConflict, pageData{Title: "Not paid", Message: err.Error()})
			return
		}
	default:
		renderPage(w, http.StatusBadRequest, pageData{Title: "Pay", Message: "Unknown action; expected pay, pay_later or cancel."})
		return
	}
	http.Redirect(w, r, strings.ReplaceAll(x.successURL, "{CHECKOUT_SESSION_ID}", id), http.StatusSeeOther)
}

func renderPage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTemplate.Execute(w, d)
}
