// Test controls: what the customer and an administrator do outside the
// shop's API (approve on the payment page, with or without the callbacks
// that follow; cancel from the admin interface), and snapshots of the
// tickets for assertions.
package cyclostest

import (
	"fmt"
	"maps"
	"time"
)

// Ticket is a snapshot of a ticket.
type Ticket struct {
	Number            string
	Status            string // one of the Status constants
	Amount            string // "75.00"
	Description       string
	OrderID           string
	Payer             string // the fixed payer's login, if the ticket named one
	ApprovedBy        string // the login of whoever approved it
	SuccessURL        string
	SuccessWebhook    string
	CancelURL         string
	CustomValues      map[string]string
	Type              string // the payment type's qualified internal name
	ExpiresAt         time.Time
	TransactionNumber string // of the payment, once processed
	ProcessCount      int    // process calls answered 200: the first pays, the rest repeat it
}

// Approve is the customer login approving the ticket on the payment page,
// except that the successWebhook call is made before Approve returns, so
// tests are deterministic. It returns where the browser is sent: the
// successUrl with orderId and ticketNumber, or "" without a successUrl.
// The errors are those of the page: a ticket that is not open, a payer who
// may not approve it, insufficient balance.
func (s *Server) Approve(number, login string) (successRedirect string, err error) {
	a, err := s.approveAs(number, login, true)
	if err != nil {
		return "", err
	}
	if a.webhook != "" {
		s.deliver(number, a.webhook)
	}
	return a.redirect, nil
}

// ApproveNoCallbacks approves the ticket as login, but the webhook call and
// the redirect are lost (the customer closes the browser, the shop's
// endpoint is down), so only a shop that checks its pending tickets learns
// of the approval.
func (s *Server) ApproveNoCallbacks(number, login string) error {
	_, err := s.approveAs(number, login, false)
	return err
}

// approveAs approves as login. With callWebhook, a webhook to call is
// counted as under way before the approval is visible, so WaitWebhooks
// cannot miss it; the caller delivers it.
func (s *Server) approveAs(number, login string, callWebhook bool) (approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	payer := s.users[login]
	if payer == nil {
		return approval{}, fmt.Errorf("cyclostest: approving ticket %s: no user %q", number, login)
	}
	a, err := s.approve(number, payer)
	if err != nil {
		return approval{}, fmt.Errorf("cyclostest: approving ticket %s as %s: %s", number, login, err.msg)
	}
	if !callWebhook {
		a.webhook = ""
	} else if a.webhook != "" {
		s.inflight++
	}
	return a, nil
}

// AdminCancel is an administrator canceling a pending (open) ticket from
// the web interface, as the HVC guide says administrators can. Its
// errors are those of the API's cancel.
func (s *Server) AdminCancel(number string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cancel(number, nil); err != nil {
		return fmt.Errorf("cyclostest: canceling ticket %s: %s", number, err.msg)
	}
	return nil
}

// Ticket is a snapshot of the ticket with that number, with its status up
// to date (an open ticket past its expiration date is expired).
func (s *Server) Ticket(number string) (Ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.find(number)
	if err != nil {
		return Ticket{}, false
	}
	return t.snapshot(), true
}

// Tickets lists every ticket, in creation order.
func (s *Server) Tickets() []Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Ticket, len(s.order))
	for i, t := range s.order {
		s.refresh(t)
		out[i] = t.snapshot()
	}
	return out
}

func (t *ticket) snapshot() Ticket {
	snap := Ticket{
		Number:         t.number,
		Status:         t.status,
		Amount:         formatCents(t.amount),
		Description:    t.description,
		OrderID:        t.orderID,
		SuccessURL:     t.successURL,
		SuccessWebhook: t.successWebhook,
		CancelURL:      t.cancelURL,
		CustomValues:   maps.Clone(t.customValues),
		Type:           t.typ,
		ExpiresAt:      t.expires,
		ProcessCount:   t.processCount,
	}
	if t.payer != nil {
		snap.Payer = t.payer.login
	}
	if t.approvedBy != nil {
		snap.ApprovedBy = t.approvedBy.login
	}
	if t.payment != nil {
		snap.TransactionNumber = t.payment.number
	}
	return snap
}
