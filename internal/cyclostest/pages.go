// The customer's side: the page where the payer approves a ticket with
// their login and password, at /pay/{ticket} (the address the HVC guide
// gives) and, on 4.16, at the ticket's approveUrl. Approving redirects the
// browser to the shop's successUrl while Cyclos calls its successWebhook;
// canceling redirects to cancelUrl and leaves the ticket open, since only
// the shop can cancel a ticket.
package cyclostest

import (
	"html/template"
	"net/http"
)

// pageData is what the page template shows.
type pageData struct {
	Title       string
	Message     string
	Error       string
	Form        bool
	Action      string
	Amount      string
	Currency    string
	Description string
	Payee       string
	Username    string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body>
<h1>{{.Title}}</h1>
{{if .Message}}<p class="message">{{.Message}}</p>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Form}}
<dl>
<dt>To</dt><dd class="payee">{{.Payee}}</dd>
<dt>Amount</dt><dd class="amount">{{.Amount}} {{.Currency}}</dd>
<dt>Description</dt><dd class="description">{{.Description}}</dd>
</dl>
<form method="post" action="{{.Action}}">
<label>Username <input name="username" value="{{.Username}}" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button name="action" value="approve">Approve</button>
<button name="action" value="cancel">Cancel</button>
</form>
{{end}}
</body>
</html>
`))

func writePage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTemplate.Execute(w, d)
}

// formPage is the approval form for an open ticket. Callers hold s.mu.
func formPage(t *ticket, action string) pageData {
	return pageData{
		Title:       "Approve payment",
		Form:        true,
		Action:      action,
		Amount:      formatCents(t.amount),
		Currency:    currencyName,
		Description: t.description,
		Payee:       t.owner.name,
	}
}

// statusPage is what a ticket that cannot be approved any more shows:
// expired and canceled tickets are gone for good (410); an approved or
// processed one was already approved, which is no error for the customer.
func statusPage(t *ticket) (int, pageData) {
	switch t.status {
	case StatusExpired:
		return http.StatusGone, pageData{Title: "Ticket expired", Message: "This payment ticket has expired."}
	case StatusCanceled:
		return http.StatusGone, pageData{Title: "Ticket canceled", Message: "This payment ticket was canceled by the receiver."}
	}
	return http.StatusOK, pageData{Title: "Already approved", Message: "This payment ticket was already approved."}
}

func notFoundPage() pageData {
	return pageData{Title: "Ticket not found", Message: "There is no payment ticket with this number."}
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t, err := s.find(r.PathValue("ticket"))
	var (
		status = http.StatusOK
		d      pageData
	)
	switch {
	case err != nil:
		status, d = http.StatusNotFound, notFoundPage()
	case t.status != StatusOpen:
		status, d = statusPage(t)
	default:
		d = formPage(t, r.URL.Path)
	}
	s.mu.Unlock()
	writePage(w, status, d)
}

// servePagePost handles the form's Approve and Cancel buttons.
func (s *Server) servePagePost(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	number := r.PathValue("ticket")
	action := r.PostForm.Get("action")
	username := r.PostForm.Get("username")

	s.mu.Lock()
	t, err := s.find(number)
	if err != nil {
		s.mu.Unlock()
		writePage(w, http.StatusNotFound, notFoundPage())
		return
	}
	if t.status != StatusOpen {
		status, d := statusPage(t)
		s.mu.Unlock()
		writePage(w, status, d)
		return
	}
	form := formPage(t, r.URL.Path)
	form.Username = username
	switch action {
	case "cancel":
		target := ""
		if t.cancelURL != "" {
			target = withTicketParams(t.cancelURL, t)
		}
		s.mu.Unlock()
		if target == "" {
			writePage(w, http.StatusOK, pageData{Title: "Payment canceled", Message: "You did not approve the payment. You can close this page."})
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	case "approve":
	default:
		s.mu.Unlock()
		form.Error = "Choose Approve or Cancel."
		writePage(w, http.StatusBadRequest, form)
		return
	}

	payer := s.checkPassword(username, r.PostForm.Get("password"))
	if payer == nil {
		s.mu.Unlock()
		form.Error = "The username or password is invalid."
		writePage(w, http.StatusUnauthorized, form)
		return
	}
	a, aerr := s.approve(number, payer)
	if aerr == nil && a.webhook != "" {
		s.startWebhook(number, a.webhook)
	}
	s.mu.Unlock()
	if aerr != nil {
		// The payment was refused (a PaymentError answers 500 in the API,
		// but to the customer it is a refusal to pay) or the payer may not
		// approve this ticket; the form stays, with Cyclos's message.
		form.Error = aerr.msg
		status := aerr.status
		if status == http.StatusInternalServerError {
			status = http.StatusPaymentRequired
		}
		writePage(w, status, form)
		return
	}
	if a.redirect == "" {
		writePage(w, http.StatusOK, pageData{Title: "Payment approved", Message: "The payment was approved. You can close this page."})
		return
	}
	http.Redirect(w, r, a.redirect, http.StatusSeeOther)
}
