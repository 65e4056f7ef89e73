// Sessions and payments as KOMOJU shows them (komoju-node-sdk Session.md,
// Payment.md), and what the customer and KOMOJU do to them outside the API.
package komojutest

import (
	"fmt"
	"time"
)

type session struct {
	ID               string
	Amount           int64
	Currency         string
	exp              int
	ReturnURL        string
	URL              string
	Locale           string
	Email            string
	Status           string // pending, completed, cancelled
	Created          time.Time
	CancelledAt      time.Time
	CompletedAt      time.Time
	life             time.Duration
	Types            []string
	Metadata         map[string]string
	ExternalOrderNum string
	Payment          string // the payment id, once one was made
}

type payment struct {
	ID               string
	Status           string // pending, authorized, captured, cancelled, expired, refunded, failed
	Amount           int64
	Currency         string
	Type             string // credit_card, konbini
	Store            string
	Confirmation     string
	Receipt          string
	Deadline         time.Time
	Created          time.Time
	CapturedAt       time.Time
	ExternalOrderNum string
	Session          string
	Refunded         int64
	Refunds          []map[string]any
	Metadata         map[string]string
}

func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) expired(x *session) bool {
	return x.Status == "pending" && !s.now().Before(x.Created.Add(x.life))
}

func (s *Server) sessionJSON(x *session) map[string]any {
	var pay any
	if p := s.payments[x.Payment]; p != nil {
		s.expireDue(p)
		pay = s.paymentJSON(p)
	}
	types := x.Types
	if types == nil {
		types = []string{"credit_card", "konbini"}
	}
	methods := make([]map[string]any, len(types))
	for i, t := range types {
		methods[i] = map[string]any{"type": t}
	}
	return map[string]any{
		"id": x.ID, "resource": "session", "mode": "payment", "amount": x.Amount, "currency": x.Currency,
		"session_url": x.URL, "return_url": x.ReturnURL, "default_locale": x.Locale, "email": x.Email,
		"payment_methods": methods, "created_at": stamp(x.Created), "cancelled_at": stamp(x.CancelledAt),
		"completed_at": stamp(x.CompletedAt), "status": x.Status, "expired": s.expired(x),
		"metadata": x.Metadata, "payment": pay,
		"payment_data": map[string]any{"external_order_num": x.ExternalOrderNum, "capture": "auto"},
	}
}

func (s *Server) paymentJSON(p *payment) map[string]any {
	details := map[string]any{"type": p.Type}
	if p.Type == "konbini" {
		details["store"] = p.Store
		details["confirmation_code"] = p.Confirmation
		details["receipt"] = p.Receipt
		details["instructions_url"] = s.URL + "/instructions/" + p.ID
	} else {
		details["last_four_digits"] = "1111"
		details["brand"] = "visa"
	}
	refunds := p.Refunds
	if refunds == nil {
		refunds = []map[string]any{}
	}
	return map[string]any{
		"id": p.ID, "resource": "payment", "status": p.Status, "amount": p.Amount, "tax": 0,
		"payment_method_fee": 0, "total": p.Amount, "currency": p.Currency,
		"payment_deadline": stamp(p.Deadline), "payment_details": details,
		"captured_at": stamp(p.CapturedAt), "created_at": stamp(p.Created),
		"external_order_num": p.ExternalOrderNum, "session": p.Session,
		"amount_refunded": p.Refunded, "refunds": refunds, "refund_requests": []any{},
		"metadata": p.Metadata,
	}
}

// pay makes the session's payment as the customer does on the hosted page:
// method credit_card (captured, or failed with [DeclineCard]) or konbini
// (authorized until its deadline, at store).
func (s *Server) pay(id, method, card, store string) (*payment, error) {
	x := s.sessions[id]
	switch {
	case x == nil:
		return nil, fmt.Errorf("no such session %s", id)
	case s.expired(x):
		return nil, fmt.Errorf("this session has expired")
	case x.Status != "pending":
		return nil, fmt.Errorf("this session is %s", x.Status)
	}
	allowed := x.Types == nil && (method == "credit_card" || method == "konbini")
	for _, t := range x.Types {
		allowed = allowed || t == method
	}
	if !allowed {
		return nil, fmt.Errorf("payment type %s is not offered in this session", method)
	}
	p := &payment{
		ID: newID(), Amount: x.Amount, Currency: x.Currency, Type: method, Created: s.now(),
		ExternalOrderNum: x.ExternalOrderNum, Session: x.ID, Metadata: x.Metadata,
	}
	s.payments[p.ID] = p
	switch method {
	case "konbini":
		if store == "" {
			store = KonbiniStores[0]
		}
		p.Store, p.Confirmation, p.Receipt = store, digits(6), digits(11)
		p.Deadline = SlipDeadline(s.now(), s.konbiniLife)
		x.Status, x.CompletedAt, x.Payment = "completed", s.now(), p.ID
		s.move(p, "authorized")
	default:
		if card == DeclineCard {
			s.move(p, "failed")
			return p, fmt.Errorf("the card was declined (insufficient funds)")
		}
		x.Status, x.CompletedAt, x.Payment = "completed", s.now(), p.ID
		s.move(p, "captured")
	}
	return p, nil
}

// Pay pays session id as a customer on the hosted page does (method
// "credit_card" or "konbini") and returns the payment's id; a declined card
// ([DeclineCard]) returns an error and leaves the session open.
func (s *Server) Pay(id, method, card string) (string, error) {
	s.mu.Lock()
	n := len(s.events)
	p, err := s.pay(id, method, card, "")
	evs := append([]Event(nil), s.events[n:]...)
	s.mu.Unlock()
	s.send(evs)
	if p == nil {
		return "", err
	}
	return p.ID, err
}

// control runs a change KOMOJU makes on its own, then delivers its events.
func (s *Server) control(id string, f func(p *payment) error) error {
	s.mu.Lock()
	n := len(s.events)
	p := s.payments[id]
	var err error
	if p == nil {
		err = fmt.Errorf("komojutest: no payment %s", id)
	} else {
		err = f(p)
	}
	evs := append([]Event(nil), s.events[n:]...)
	s.mu.Unlock()
	s.send(evs)
	return err
}

// Capture is the customer paying a konbini slip at the counter.
func (s *Server) Capture(paymentID string) error {
	return s.control(paymentID, func(p *payment) error {
		s.expireDue(p)
		if p.Status != "authorized" {
			return fmt.Errorf("komojutest: payment %s is %s, not authorized", p.ID, p.Status)
		}
		s.move(p, "captured")
		return nil
	})
}

// Expire is a slip running out unpaid (KOMOJU expires it at its deadline;
// this does it now, whatever the clock says).
func (s *Server) Expire(paymentID string) error {
	return s.control(paymentID, func(p *payment) error {
		if p.Status != "authorized" && p.Status != "pending" {
			return fmt.Errorf("komojutest: payment %s is %s", p.ID, p.Status)
		}
		s.move(p, "expired")
		return nil
	})
}

// CancelInDashboard cancels a payment as the merchant does in KOMOJU's
// dashboard.
func (s *Server) CancelInDashboard(paymentID string) error {
	return s.control(paymentID, func(p *payment) error {
		if p.Status != "authorized" && p.Status != "pending" {
			return fmt.Errorf("komojutest: payment %s is %s", p.ID, p.Status)
		}
		s.move(p, "cancelled")
		return nil
	})
}

// RefundInDashboard refunds a captured card payment in full from KOMOJU's
// dashboard.
func (s *Server) RefundInDashboard(paymentID string) error {
	return s.control(paymentID, func(p *payment) error {
		if p.Status != "captured" {
			return fmt.Errorf("komojutest: payment %s is %s", p.ID, p.Status)
		}
		s.refund(p, p.Amount-p.Refunded)
		return nil
	})
}

// japan is KOMOJU's time zone for konbini deadlines (UTC+9).
var japan = time.FixedZone("JST", 9*60*60)

// SlipDeadline is the payment_deadline of a konbini slip taken at now that
// may be paid for life: KOMOJU voids a slip after 23:59:59 (Japan time) of
// its last day (protocols.md §2.6).
func SlipDeadline(now time.Time, life time.Duration) time.Time {
	last := now.Add(life).In(japan)
	y, m, d := last.Date()
	return time.Date(y, m, d, 23, 59, 59, 0, japan).UTC()
}

// ExpireDue expires every slip whose deadline has passed and sends their
// payment.expired events, as KOMOJU does on its own at the deadline; tests
// call it after moving the clock. It returns how many it expired.
func (s *Server) ExpireDue() int {
	s.mu.Lock()
	n, before := 0, len(s.events)
	for _, p := range s.payments {
		if p.Status == "authorized" && !s.now().Before(p.Deadline) {
			s.move(p, "expired")
			n++
		}
	}
	evs := append([]Event(nil), s.events[before:]...)
	s.mu.Unlock()
	s.send(evs)
	return n
}

// Forget makes KOMOJU no longer know a session, as when it was made with
// another account's key.
func (s *Server) Forget(sessionID string) {
	s.mu.Lock()
	delete(s.sessions, sessionID)
	s.mu.Unlock()
}

// PaymentStatus is a payment's status now.
func (s *Server) PaymentStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.payments[id]; p != nil {
		s.expireDue(p)
		return p.Status
	}
	return ""
}

// SessionStatus is a session's status now ("pending", "completed",
// "cancelled"), and whether it has expired.
func (s *Server) SessionStatus(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.sessions[id]; x != nil {
		return x.Status, s.expired(x)
	}
	return "", false
}

// PaymentOf is the payment made in session id, or "".
func (s *Server) PaymentOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.sessions[id]; x != nil {
		return x.Payment
	}
	return ""
}
