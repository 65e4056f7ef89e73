// The hosted page at a session's session_url, so an end-to-end test can go
// through KOMOJU as a customer: pay by card, take a konbini slip, or go back
// to the shop without paying. KOMOJU sends the customer to return_url with
// ?session_id= in every case.
package komojutest

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Locale}}">
<head><meta charset="utf-8"><title>KOMOJU (komojutest)</title></head>
<body>
<h1>{{.Title}}</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Open}}
<p>Total: <strong id="amount">{{.Amount}} {{.Currency}}</strong></p>
<form method="post">
<input name="card" value="4111111111111111">
<button type="submit" name="action" value="credit_card">Pay by card</button>
<select name="store">{{range .Stores}}<option>{{.}}</option>{{end}}</select>
<button type="submit" name="action" value="konbini">Pay at a konbini</button>
<button type="submit" name="action" value="back">Back to the shop</button>
</form>
{{end}}
</body>
</html>
`))

type pageData struct {
	Title, Message, Locale, Currency string
	Open                             bool
	Amount                           int64
	Stores                           []string
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	x := s.sessions[r.PathValue("id")]
	var d pageData
	status := http.StatusOK
	switch {
	case x == nil:
		status, d = http.StatusNotFound, pageData{Title: "Not found", Message: "No such session."}
	case s.expired(x):
		status, d = http.StatusGone, pageData{Title: "Expired", Message: "This session has expired."}
	case x.Status != "pending":
		d = pageData{Title: "Done", Message: "This session is " + x.Status + "."}
	default:
		d = pageData{Title: "Pay", Open: true, Amount: x.Amount, Currency: x.Currency, Locale: x.Locale, Stores: KonbiniStores}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTemplate.Execute(w, d)
}

// servePagePost is the customer pressing a button; every outcome but a
// declined card or a closed session goes back to return_url.
func (s *Server) servePagePost(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	x := s.sessions[id]
	var ret string
	if x != nil {
		ret = x.ReturnURL
	}
	s.mu.Unlock()
	if x == nil {
		http.NotFound(w, r)
		return
	}
	switch action := r.PostFormValue("action"); action {
	case "credit_card", "konbini":
		s.mu.Lock()
		n := len(s.events)
		_, err := s.pay(id, action, r.PostFormValue("card"), r.PostFormValue("store"))
		sent := append([]Event(nil), s.events[n:]...)
		s.mu.Unlock()
		s.send(sent)
		if err != nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusPaymentRequired)
			pageTemplate.Execute(w, pageData{Title: "Payment failed", Message: err.Error()})
			return
		}
	case "back":
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	sep := "?"
	if strings.Contains(ret, "?") {
		sep = "&"
	}
	http.Redirect(w, r, ret+sep+"session_id="+url.QueryEscape(id), http.StatusSeeOther)
}
