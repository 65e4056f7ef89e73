// Package sandbox is the built-in test provider: a local hosted page with
// Pay / Decline / Pay later that sends a webhook signed with the site
// secret to {base}/webhook/sandbox, which is verified on the same path as
// a real provider's. No money moves.
//
// Decline fails the attempt (the customer may try again, as after a real
// card decline); Pay later puts the order on hold for HoldFor, as a
// konbini slip would, and the same page then settles it: the customer
// paid, or the hold expired.
package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/templates"
)

// Name is the provider's name in routes and config.
const Name = "sandbox"

// HoldFor is how long a "Pay later" payment is held open.
const HoldFor = 72 * time.Hour

// Sandbox is the test provider. Its zero value is ready for Setup.
type Sandbox struct {
	env provider.Env
}

var (
	_ provider.Provider  = (*Sandbox)(nil)
	_ provider.Setuper   = (*Sandbox)(nil)
	_ provider.Webhooker = (*Sandbox)(nil)
	_ provider.Router    = (*Sandbox)(nil)
	_ provider.Labeler   = (*Sandbox)(nil)
	_ provider.Refunder  = (*Sandbox)(nil)
)

// Name implements provider.Provider.
func (*Sandbox) Name() string { return Name }

// Label implements provider.Labeler.
func (*Sandbox) Label(locale string) string {
	if locale == "ja" {
		return "サンドボックス（テスト決済・実際のお金は動きません）"
	}
	return "Sandbox (test payment, no real money)"
}

// Setup implements provider.Setuper.
func (s *Sandbox) Setup(env provider.Env) error {
	if env.Secret == nil || env.Webhook == nil || env.Lookup == nil || env.Render == nil || env.Locale == nil {
		return fmt.Errorf("sandbox: incomplete site environment")
	}
	if env.Logger == nil {
		env.Logger = zap.NewNop()
	}
	s.env = env
	return nil
}

// Start sends the customer to the sandbox's hosted page.
func (s *Sandbox) Start(_ context.Context, p provider.Payment) (provider.Start, error) {
	base, ok := strings.CutSuffix(p.WebhookURL, "/webhook/"+Name)
	if !ok {
		return provider.Start{}, fmt.Errorf("sandbox: unexpected webhook URL")
	}
	// The sandbox keeps no object of its own: our reference is its reference.
	return provider.Start{Redirect: base + "/" + Name + "/" + p.Ref}, nil
}

// event is the sandbox's webhook body.
type event struct {
	ID          string `json:"id"`
	Type        string `json:"type"` // payment.paid, payment.declined, payment.on_hold
	Ref         string `json:"ref"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	Transaction string `json:"transaction"`
	// HoldUntil is when a held payment lapses (payment.on_hold only).
	HoldUntil time.Time `json:"hold_until,omitzero"`
}

var outcomes = map[string]order.State{"paid": order.Paid, "declined": order.Failed, "on_hold": order.OnHold, "expired": order.Expired}

// offered are the outcomes the page offers for an order in a state: a
// held payment can only be settled.
func offered(s order.State, outcome string) bool {
	if s == order.OnHold {
		return outcome == "paid" || outcome == "expired"
	}
	return outcome == "paid" || outcome == "declined" || outcome == "on_hold"
}

// ServeHTTP serves the hosted page: GET /{ref} shows it, POST /{ref}
// records the customer's choice, delivers the signed webhook and sends the
// customer back through the return route.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref := strings.TrimPrefix(r.URL.Path, "/")
	if ref == "" || strings.Contains(ref, "/") {
		s.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	o, pay, err := s.env.Lookup(r.Context(), ref)
	if err != nil {
		s.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	// Only an attempt the customer chose the sandbox for: another
	// provider's attempt is that provider's to settle (the site refuses a
	// sandbox webhook for it as well).
	if !o.Status.Open() || o.Current().Ref != ref || o.Current().Failed || o.Current().Provider != Name {
		http.Redirect(w, r, s.env.BasePath+"/pay/"+o.Current().Ref, http.StatusSeeOther)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		held := o.Status == order.OnHold
		p := templates.Page{Ref: ref, OrderID: o.ID, Description: o.Description, Amount: pay.Amount, Status: string(o.Status),
			RetryURL: s.env.BasePath + "/pay/" + ref}
		if held {
			p.ExpiresAt = o.Deadline()
		}
		p, err := page(p, s.env.Locale(r), s.env.BasePath+"/"+Name+"/"+ref, s.env.CSRFToken(ref), held)
		if err != nil {
			s.env.Render(w, r, http.StatusInternalServerError, "error", templates.Page{MessageKey: "error.internal"})
			return
		}
		s.env.Render(w, r, http.StatusOK, "provider", p)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if !s.env.VerifyCSRF(r, ref) {
			s.env.Render(w, r, http.StatusForbidden, "error", templates.Page{MessageKey: "error.form_expired", RetryURL: s.env.BasePath + "/pay/" + ref})
			return
		}
		outcome := r.PostFormValue("outcome")
		t := textFor(s.env.Locale(r))
		retry := s.env.BasePath + "/" + Name + "/" + ref
		if !offered(o.Status, outcome) {
			msg := t["choose"]
			if o.Status == order.OnHold {
				msg = t["choose_held"]
			}
			s.env.Render(w, r, http.StatusBadRequest, "error", templates.Page{Message: msg, RetryURL: retry})
			return
		}
		if err := s.deliver(r, pay, outcome); err != nil {
			s.env.Logger.Error("sandbox webhook not delivered", zap.String("ref", ref), zap.Error(err))
			s.env.Render(w, r, http.StatusBadGateway, "error", templates.Page{Message: t["undelivered"], RetryURL: retry})
			return
		}
		http.Redirect(w, r, s.env.BasePath+"/return/"+Name+"/"+ref, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// deliver sends the signed webhook through the site's own webhook route,
// in process, exactly as a provider's request would arrive.
func (s *Sandbox) deliver(r *http.Request, pay provider.Payment, outcome string) error {
	ev := event{
		ID:       "evt_" + order.NewRef(),
		Type:     "payment." + outcome,
		Ref:      pay.Ref,
		Amount:   pay.Amount.String(),
		Currency: pay.Amount.Currency(),
	}
	switch outcome {
	case "paid":
		ev.Transaction = "sbx_txn_" + order.NewRef()
	case "on_hold":
		ev.HoldUntil = s.env.Now().Add(HoldFor).UTC().Truncate(time.Second)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req := httptest.NewRequestWithContext(r.Context(), http.MethodPost, s.env.BasePath+"/webhook/"+Name, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	s.env.Secret.SetWebhookHeaders(req.Header, ev.ID, s.env.Now(), body)
	rec := httptest.NewRecorder()
	s.env.Webhook.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("webhook answered %d", rec.Code)
	}
	return nil
}

// Refund implements provider.Refunder: the sandbox moved no money, so a
// refund of its payment, all of it or part, is done at once, and
// repeating a request is the same refund (its key is the event id).
func (*Sandbox) Refund(_ context.Context, p provider.Payment, r provider.Refund) (provider.Finding, error) {
	total := r.Before.Add(r.Amount)
	return provider.Finding{Ref: p.Ref, EventID: "sbx_" + r.Key, Status: order.Refunded, Refunded: total,
		Transaction: p.Transaction, Note: "refunded " + r.Amount.String() + " in the sandbox (no real money)"}, nil
}

// Webhook verifies a sandbox webhook with the site secret (Standard
// Webhooks) and reports what it says.
func (s *Sandbox) Webhook(_ context.Context, r *http.Request, body []byte) ([]provider.Finding, error) {
	id, err := s.env.Secret.VerifyWebhook(r.Header, body, s.env.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", provider.ErrUnauthenticated, err)
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Ref == "" {
		return nil, fmt.Errorf("%w: sandbox event is not the expected JSON", provider.ErrMalformed)
	}
	if ev.ID != id {
		return nil, fmt.Errorf("%w: event id differs from webhook-id", provider.ErrMalformed)
	}
	status, ok := outcomes[strings.TrimPrefix(ev.Type, "payment.")]
	if !ok {
		return nil, nil // an event type we do not act on
	}
	f := provider.Finding{Ref: ev.Ref, EventID: ev.ID, Status: status, Transaction: ev.Transaction, HoldUntil: ev.HoldUntil}
	if status == order.Paid {
		amt, err := s.env.Currencies.Parse(ev.Amount, ev.Currency)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", provider.ErrMalformed, err)
		}
		f.Paid = amt
	}
	return []provider.Finding{f}, nil
}
