// Package payments is one site's payment logic, apart from HTTP: it
// receives the shop's orders, starts providers, applies what providers
// verified (findings) to orders together with the shop's callbacks and the
// providers' own messages, in one durable transaction, expires orders,
// reconciles stale attempts and refunds. The handlers package serves the
// routes around it: data flows intake → payments → provider → payments →
// notify (through the store's outbox).
package payments

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

// Receive stores the order the shop announced (idempotent for the same
// order id, amount and currency) and returns it as stored. When the
// customer will be sent straight to a provider (startWith), a new attempt
// records that choice in the same write, so that start usually has
// nothing left to store.
func (s *Site) Receive(ctx context.Context, in order.Intake, startWith string) (*order.Order, order.IntakeResult, error) {
	in.Site = s.cfg.Site
	if err := in.Validate(); err != nil {
		return nil, 0, err
	}
	if in.Provider != "" {
		if _, ok := s.providers[in.Provider]; !ok {
			return nil, 0, fmt.Errorf("%w: provider %q is not configured here", order.ErrInvalid, in.Provider)
		}
	}
	now := s.now()
	var result order.IntakeResult
	o, err := s.cfg.Store.Update(ctx, in.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		if o == nil {
			n, err := order.New(in, now, s.cfg.Expire)
			result = order.Created
			if err == nil && startWith != "" {
				n.Current().Provider, n.Current().StartedAt = startWith, now
			}
			return n, nil, err
		}
		newKey := in.IdempotencyKey != "" && !slices.Contains(o.IdempotencyKeys, in.IdempotencyKey)
		res, err := o.Receive(in, now, s.cfg.Expire)
		result = res
		if err != nil || res == order.Same {
			// Same order: write nothing unless open details were
			// refreshed or the call's idempotency record is to be noted.
			if err == nil && (o.Status == order.Pending || newKey) {
				return o, nil, nil
			}
			return nil, nil, err
		}
		if startWith != "" {
			o.Current().Provider, o.Current().StartedAt = startWith, now
		}
		return o, nil, nil
	})
	if err != nil {
		return nil, 0, err
	}
	if result == order.Created {
		s.cfg.Observer.Moved(s.cfg.Site, "", order.Pending)
	}
	if result == order.NewAttempt {
		s.log.Info("order amount changed: new attempt", zap.String("site", s.cfg.Site), zap.String("order", in.ID))
		if n := len(o.Attempts); n > 1 {
			s.close(ctx, o, &o.Attempts[n-2], "superseded by a new attempt")
		}
	}
	return o, result, nil
}

// Apply applies a verified finding to the order of its attempt: the state
// moves forward when the evidence allows it, the shop callback for the
// change is written in the same transaction, and evidence seen before
// changes nothing. It returns the order as stored and what happened.
func (s *Site) Apply(ctx context.Context, cause order.CauseKind, f provider.Finding) (*order.Order, order.Outcome, error) {
	var cur *order.Order
	var err error
	switch {
	case f.Ref != "":
		cur, err = s.cfg.Store.ByRef(ctx, f.Ref)
	case f.ProviderRef != "":
		// Found by the provider's id: the latest attempt that recorded it.
		cur, err = s.cfg.Store.ByProviderRef(ctx, f.ProviderRef)
		if err == nil {
			for i := len(cur.Attempts) - 1; i >= 0 && f.Ref == ""; i-- {
				if cur.Attempts[i].ProviderRef == f.ProviderRef {
					f.Ref = cur.Attempts[i].Ref
				}
			}
			if f.Ref == "" {
				err = store.ErrNotFound
			}
		}
	default:
		return nil, order.Outcome{}, fmt.Errorf("%w: finding names no attempt", order.ErrUnknownRef)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, order.Outcome{}, order.ErrUnknownRef
	}
	if err != nil {
		return nil, order.Outcome{}, err
	}
	if cur.Site != s.cfg.Site {
		return nil, order.Outcome{}, order.ErrUnknownRef // another site's attempt
	}
	if f.From != "" {
		if a := cur.Attempt(f.Ref); a == nil || a.Provider != f.From {
			// Another provider's attempt, or one never started at this
			// provider: this provider cannot have been paid for it.
			s.log.Warn("a provider reported on an attempt it was not chosen for; ignored",
				zap.String("order", cur.ID), zap.String("from", f.From), zap.String("attempt_provider", providerOf(cur, f.Ref)))
			return nil, order.Outcome{}, order.ErrUnknownRef
		}
	}
	if f.Dispute != nil {
		return s.dispute(ctx, cause, cur, f)
	}
	if f.Status == "" {
		return s.record(ctx, cur, f)
	}
	now := s.now()
	var out order.Outcome
	queued := 0 // outbox rows written with the change
	o, err := s.cfg.Store.Update(ctx, cur.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		if o == nil {
			return nil, nil, order.ErrUnknownRef
		}
		out = o.Apply(order.Transition{
			To:          f.Status,
			Ref:         f.Ref,
			Cause:       order.Cause{Kind: cause, Ref: f.EventID},
			Paid:        f.Paid,
			Transaction: f.Transaction,
			Provider:    providerOf(o, f.Ref),
			AcceptOver:  f.AcceptOver,
			HoldUntil:   f.HoldUntil,
			Refunded:    f.Refunded,
			Asked:       f.Asked,
			Note:        f.Note,
		}, now)
		if out.Duplicate {
			return nil, nil, nil
		}
		if errors.Is(out.Err, order.ErrUnknownRef) {
			return nil, nil, out.Err
		}
		if a := o.Attempt(f.Ref); a != nil {
			recordOn(a, f)
		}
		var ds []store.Delivery
		if out.Changed && s.cfg.Callback != "" {
			d, err := s.delivery(o, out.Event, now)
			if err != nil {
				return nil, nil, err
			}
			ds = append(ds, d)
		}
		if out.Changed {
			ds = append(ds, s.announced(o, f.Ref, out.Event, now)...)
		}
		queued = len(ds)
		return o, ds, nil
	})
	if err != nil {
		return nil, out, err
	}
	if out.Changed {
		s.log.Info("order moved",
			zap.String("site", o.Site), zap.String("order", o.ID),
			zap.String("from", string(out.Event.From)), zap.String("to", string(out.Event.To)),
			zap.String("cause", string(cause)), zap.Int("attempt", out.Event.Attempt))
		if queued > 0 {
			s.cfg.Wake()
		}
		if out.Event.From != out.Event.To {
			s.cfg.Observer.Moved(o.Site, providerOf(o, f.Ref), out.Event.To)
		}
		s.cfg.OnChange(o)
		if out.Event.To.Ended() && (cause == order.ByExpiry || cause == order.ByCustomer || cause == order.ByAdmin || cause == order.ByConfig) {
			// Ended here, not at the provider: stop the providers taking
			// money for it.
			for _, a := range o.Waiting() {
				s.close(ctx, o, a, "order "+string(out.Event.To))
			}
		}
	} else if out.AttemptFailed {
		s.log.Info("payment attempt failed; the order stays payable",
			zap.String("site", o.Site), zap.String("order", o.ID), zap.String("provider", providerOf(o, f.Ref)),
			zap.String("cause", string(cause)), zap.Int("attempt", out.Event.Attempt))
		s.cfg.OnChange(o)
	} else if out.Err != nil {
		s.log.Warn("provider evidence changed nothing",
			zap.String("site", o.Site), zap.String("order", o.ID),
			zap.String("cause", string(cause)), zap.Error(out.Err))
	}
	return o, out, nil
}

// recordOn records what a finding says about the attempt beyond its
// state: the provider's reference, when it has none yet, and its data.
// It reports whether anything changed.
func recordOn(a *order.Attempt, f provider.Finding) bool {
	changed := false
	if f.ProviderRef != "" && a.ProviderRef == "" {
		a.ProviderRef, changed = f.ProviderRef, true
	}
	for k, v := range f.Data {
		if a.ProviderData[k] == v {
			continue
		}
		if a.ProviderData == nil {
			a.ProviderData = map[string]string{}
		}
		a.ProviderData[k], changed = v, true
	}
	return changed
}

// record stores what a finding without a state says about its attempt
// (provider.Finding's ProviderRef and Data), and nothing when that is
// already there.
func (s *Site) record(ctx context.Context, cur *order.Order, f provider.Finding) (*order.Order, order.Outcome, error) {
	probe := *cur.Attempt(f.Ref)
	probe.ProviderData = maps.Clone(probe.ProviderData)
	if !recordOn(&probe, f) {
		return cur, order.Outcome{}, nil
	}
	now := s.now()
	o, err := s.cfg.Store.Update(ctx, cur.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		a := o.Attempt(f.Ref)
		if a == nil {
			return nil, nil, order.ErrUnknownRef
		}
		if !recordOn(a, f) {
			return nil, nil, nil
		}
		o.UpdatedAt = now
		return o, nil, nil
	})
	return o, order.Outcome{}, err
}

// dispute applies a provider's news of a dispute of the order's payment:
// order.ApplyDispute, with order.disputed when one opens and
// order.dispute_closed when it is decided (and order.refunded when it is
// lost: the money went back), written with the change.
func (s *Site) dispute(ctx context.Context, cause order.CauseKind, cur *order.Order, f provider.Finding) (*order.Order, order.Outcome, error) {
	now := s.now()
	var out order.Outcome
	var kind order.DisputeKind
	o, err := s.cfg.Store.Update(ctx, cur.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		if o == nil {
			return nil, nil, order.ErrUnknownRef
		}
		kind, out = o.ApplyDispute(*f.Dispute, order.Cause{Kind: cause, Ref: f.EventID}, now)
		if out.Duplicate {
			return nil, nil, nil
		}
		var ds []store.Delivery
		if s.cfg.Callback == "" {
			return o, nil, nil
		}
		var typs []string
		switch kind {
		case order.DisputeOpened:
			typs = []string{"order.disputed"}
		case order.DisputeClosed:
			typs = []string{"order.dispute_closed"}
			if out.Event.IsRefund() {
				typs = append(typs, "order.refunded")
			}
		}
		for _, typ := range typs {
			d, err := s.callback(o, typ, out.Event, f.Dispute.ID, now)
			if err != nil {
				return nil, nil, err
			}
			ds = append(ds, d)
		}
		return o, ds, nil
	})
	if err != nil {
		return nil, out, err
	}
	if out.Err != nil {
		s.log.Warn("a dispute that changes nothing here: see the order's history",
			zap.String("site", o.Site), zap.String("order", o.ID), zap.String("dispute", f.Dispute.ID), zap.Error(out.Err))
	}
	if kind != order.DisputeNothing {
		if out.Event.From != out.Event.To {
			s.cfg.Observer.Moved(o.Site, providerOf(o, f.Ref), out.Event.To)
		}
		s.log.Warn("payment disputed",
			zap.String("site", o.Site), zap.String("order", o.ID), zap.String("dispute", f.Dispute.ID),
			zap.String("status", f.Dispute.Status), zap.String("outcome", f.Dispute.Outcome))
		if out.Changed {
			s.cfg.Wake()
		}
		s.cfg.OnChange(o)
	}
	return o, out, nil
}

// closeTimeout bounds the provider call that closes an attempt.
const closeTimeout = 10 * time.Second

// close asks the attempt's provider, if it can, to stop taking money for
// an attempt that can no longer pay the order. Failures are logged: the
// order's state is already stored, and a payment that still arrives is
// recorded as late or superseded for the operator.
func (s *Site) close(ctx context.Context, o *order.Order, att *order.Attempt, why string) {
	p, ok := s.providers[att.Provider]
	c, can := p.(provider.Closer)
	if !ok || !can || att.StartedAt.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if err := c.Close(ctx, s.Payment(Origin{}, o, att, att.Provider)); err != nil {
		s.log.Warn("closing the provider's attempt", zap.String("site", o.Site), zap.String("order", o.ID),
			zap.String("provider", att.Provider), zap.String("why", why), zap.Error(err))
	}
}

func providerOf(o *order.Order, ref string) string {
	if a := o.Attempt(ref); a != nil {
		return a.Provider
	}
	return ""
}

// announced are the messages the moving attempt's provider sends of its
// own (provider.Announcer), as outbox rows in their own lines. A message a
// provider got wrong is dropped and logged, never allowed to fail the
// state change.
func (s *Site) announced(o *order.Order, ref string, ev order.Event, now time.Time) []store.Delivery {
	name := providerOf(o, ref)
	a, ok := s.providers[name].(provider.Announcer)
	if !ok {
		return nil
	}
	var ds []store.Delivery
	for _, m := range a.Announce(o, ev) {
		u, err := url.Parse(m.URL)
		if m.Queue == "" || strings.ContainsRune(m.Queue, 0) || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			s.log.Error("provider announced a message that cannot be sent", zap.String("provider", name), zap.String("queue", m.Queue))
			continue
		}
		d := newDelivery(o, m.Type, m.URL, m.Body, now)
		d.Queue = m.Queue
		ds = append(ds, d)
	}
	return ds
}

// callbackTypes maps a state to the callback event type of SPEC §6.1.
var callbackTypes = map[order.State]string{
	order.OnHold:    "order.pending",
	order.Paid:      "order.paid",
	order.Failed:    "order.failed",
	order.Cancelled: "order.cancelled",
	order.Expired:   "order.expired",
	order.Refunded:  "order.refunded",
}

// CallbackData is the "data" of a shop callback.
type CallbackData struct {
	OrderID     string            `json:"order_id"`
	Status      order.State       `json:"status"`
	Amount      string            `json:"amount"`
	Currency    string            `json:"currency"`
	Provider    string            `json:"provider"`
	Transaction string            `json:"transaction"`
	Attempt     int               `json:"attempt"`
	PaidAt      *time.Time        `json:"paid_at"`
	Late        bool              `json:"late"`
	Received    string            `json:"received,omitempty"`
	Flags       []string          `json:"flags,omitempty"`
	Metadata    map[string]string `json:"metadata"`
	// RefundedAmount is how much of the payment has been returned, once
	// anything has.
	RefundedAmount string `json:"refunded_amount,omitempty"`
	// Refund, in an order.refunded callback, is the refund it announces.
	Refund *RefundData `json:"refund,omitempty"`
	// Dispute, in order.disputed and order.dispute_closed callbacks, is
	// the dispute they announce.
	Dispute *DisputeData `json:"dispute,omitempty"`
}

// DisputeData is a dispute of the payment: its provider id, the amount
// and reason the customer's bank gave, the provider's status, and once
// closed its outcome (won: the shop keeps the money; lost: it went back).
type DisputeData struct {
	ID      string `json:"id"`
	Amount  string `json:"amount"`
	Reason  string `json:"reason"`
	Status  string `json:"status"`
	Outcome string `json:"outcome,omitempty"`
}

// RefundData is one refund: its amount, and whether part of the payment
// is still kept (the order then stays paid).
type RefundData struct {
	Amount  string `json:"amount"`
	Partial bool   `json:"partial"`
}

// Callback is the body of a shop callback.
type Callback struct {
	Type      string       `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
	Data      CallbackData `json:"data"`
}

// delivery makes the outbox row that tells the shop the order's state
// after ev: order.refunded for any refund, even one that leaves it paid.
func (s *Site) delivery(o *order.Order, ev order.Event, now time.Time) (store.Delivery, error) {
	typ, ok := callbackTypes[o.Status]
	if ev.IsRefund() {
		typ, ok = callbackTypes[order.Refunded], true
	}
	if !ok {
		return store.Delivery{}, fmt.Errorf("no callback type for state %s", o.Status)
	}
	return s.callback(o, typ, ev, "", now)
}

// callback makes the outbox row of a callback of type typ about o after
// ev, with the refund ev records and the dispute named, if any.
func (s *Site) callback(o *order.Order, typ string, ev order.Event, dispute string, now time.Time) (store.Delivery, error) {
	data := s.callbackData(o)
	if ev.IsRefund() {
		data.Refund = &RefundData{Amount: ev.Refund.String(), Partial: ev.To != order.Refunded}
	}
	if i := slices.IndexFunc(o.Disputes, func(d order.Dispute) bool { return d.ID == dispute }); i >= 0 {
		d := o.Disputes[i]
		data.Dispute = &DisputeData{ID: d.ID, Amount: d.Amount.String(), Reason: d.Reason, Status: d.Status, Outcome: d.Outcome}
	}
	body, err := json.Marshal(Callback{Type: typ, Timestamp: now.UTC(), Data: data})
	if err != nil {
		return store.Delivery{}, err
	}
	return newDelivery(o, typ, s.cfg.Callback, body, now), nil
}

// newDelivery is a pending outbox row of the order, due now. The store
// numbers it after the order's earlier rows, so one order's deliveries
// go out in the order they were made.
func newDelivery(o *order.Order, typ, url string, body []byte, now time.Time) store.Delivery {
	return store.Delivery{
		ID:        "msg_" + order.NewRef(),
		Site:      o.Site,
		OrderID:   o.ID,
		Type:      typ,
		URL:       url,
		Body:      body,
		State:     store.DeliveryPending,
		CreatedAt: now,
		RetryFrom: now,
		NextAt:    now,
	}
}

func (s *Site) callbackData(o *order.Order) CallbackData {
	att := o.Current()
	d := CallbackData{
		OrderID:     o.ID,
		Status:      o.Status,
		Amount:      o.Amount.String(),
		Currency:    o.Amount.Currency(),
		Provider:    o.PaidWith,
		Transaction: o.Transaction,
		Attempt:     att.Generation,
		Late:        o.Late,
		Flags:       o.Flags,
		Metadata:    o.Metadata,
	}
	if d.Provider == "" {
		d.Provider = att.Provider
	}
	if d.Metadata == nil {
		d.Metadata = map[string]string{}
	}
	if !o.PaidAt.IsZero() {
		t := o.PaidAt.UTC()
		d.PaidAt = &t
	}
	if att.Received.Valid() && !att.Received.Equal(att.Amount) {
		d.Received = att.Received.String()
	}
	if o.RefundedAmount.Valid() {
		d.RefundedAmount = o.RefundedAmount.String()
	}
	return d
}

// Payment is what a provider is told about an attempt; org is the
// request it is for (the URLs in it are the customer's).
func (s *Site) Payment(org Origin, o *order.Order, att *order.Attempt, prov string) provider.Payment {
	return provider.Payment{
		Site:         o.Site,
		OrderID:      o.ID,
		Ref:          att.Ref,
		Generation:   att.Generation,
		CreatedAt:    att.CreatedAt,
		Amount:       att.Amount,
		Description:  o.Description,
		Email:        o.Email,
		ExpiresAt:    o.ExpiresAt,
		ProviderRef:  att.ProviderRef,
		ProviderData: att.ProviderData,
		Transaction:  o.Transaction,
		Received:     att.Received,
		Locale:       org.Locale,
		ReturnURL:    s.url(org, "/return/"+prov+"/"+att.Ref),
		CancelURL:    s.url(org, "/pay/"+att.Ref),
		WebhookURL:   s.url(org, "/webhook/"+prov),
	}
}

// Lookup finds an attempt by our reference, for providers.
func (s *Site) Lookup(ctx context.Context, ref string) (*order.Order, provider.Payment, error) {
	o, err := s.cfg.Store.ByRef(ctx, ref)
	if err != nil {
		return nil, provider.Payment{}, err
	}
	att := o.Attempt(ref)
	return o, s.Payment(Origin{}, o, att, att.Provider), nil
}

// Start asks a provider to take the current attempt and records the
// choice. An attempt belongs to one provider: it is claimed for name in the
// store before the provider is asked, and when the current attempt failed
// or is another provider's, a new attempt of the same generation is made
// and claimed instead (the earlier one is closed at its provider). So two
// clicks that choose two providers at once get an attempt each, and each
// provider's findings apply to its own (Apply refuses a finding for an
// attempt of another provider). It returns the order as it now stands.
func (s *Site) Start(ctx context.Context, org Origin, o *order.Order, name string) (provider.Start, *order.Order, error) {
	p, ok := s.providers[name]
	if !ok {
		return provider.Start{}, o, fmt.Errorf("%w: provider %q is not configured here", order.ErrInvalid, name)
	}
	if cur := o.Current(); cur.Provider != name || cur.Failed {
		prev := *cur
		now := s.now()
		next, err := s.cfg.Store.Update(ctx, o.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
			if o == nil {
				return nil, nil, order.ErrUnknownRef
			}
			switch c := o.Current(); {
			case c.Provider == name && !c.Failed:
				return nil, nil, nil // claimed for name meanwhile (another click)
			case c.Provider == "" && !c.Failed:
				c.Provider = name
				return o, nil, nil
			}
			a, err := o.Retry(now)
			if err != nil {
				return nil, nil, err
			}
			a.Provider = name
			return o, nil, nil
		})
		if err != nil {
			return provider.Start{}, o, err
		}
		o = next
		if o.Current().Ref != prev.Ref {
			s.log.Info("new payment attempt", zap.String("site", o.Site), zap.String("order", o.ID),
				zap.String("provider", name), zap.String("previous_provider", prev.Provider), zap.Bool("previous_failed", prev.Failed))
			s.close(ctx, o, &prev, "the customer tried again")
		}
	}
	att := o.Current()
	st, err := p.Start(ctx, s.Payment(org, o, att, name))
	if err != nil {
		return st, o, err
	}
	if att.ProviderRef == st.ProviderRef && !att.StartedAt.IsZero() {
		return st, o, nil // already recorded (by the intake's own write, or an earlier click)
	}
	ref := att.Ref
	now := s.now()
	next, err := s.cfg.Store.Update(ctx, o.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		a := o.Attempt(ref)
		if a == nil {
			return nil, nil, order.ErrUnknownRef
		}
		if a.Provider != name {
			// Claimed above, and claims are never taken back.
			return nil, nil, fmt.Errorf("attempt %s of order %s belongs to provider %q, not %q", ref, o.ID, a.Provider, name)
		}
		if a.ProviderRef == st.ProviderRef && !a.StartedAt.IsZero() {
			return nil, nil, nil
		}
		a.ProviderRef, a.StartedAt = st.ProviderRef, now
		return o, nil, nil
	})
	if err != nil {
		return st, o, err
	}
	return st, next, nil
}

// Expire ends open orders whose deadline passed, after asking their
// provider once more so that a payment in flight is not lost. It returns
// how many orders it ended.
func (s *Site) Expire(ctx context.Context, limit int) (int, error) {
	now := s.now()
	due, err := s.cfg.Store.Open(ctx, s.cfg.Site, now, limit)
	if err != nil {
		return 0, err
	}
	var (
		n  atomic.Int64
		bg background
	)
	for _, o := range due {
		if err := s.checkAll(ctx, o); err != nil {
			s.log.Warn("checking provider before expiry", zap.String("order", o.ID), zap.Error(err))
			continue // ask again next round rather than expire a payment in flight
		}
		// Written in the background while the next order's provider is
		// asked: the writes of a pass share commits.
		bg.Go(func() error {
			cur, err := s.cfg.Store.Get(ctx, o.Key)
			if err != nil || !cur.Status.Open() || now.Before(cur.Deadline()) {
				return nil // paid, or held longer, meanwhile
			}
			if _, out, err := s.Apply(ctx, order.ByExpiry, provider.Finding{Ref: cur.Current().Ref, Status: order.Expired}); err == nil && out.Changed {
				n.Add(1)
			}
			return nil
		})
	}
	err = bg.Wait()
	return int(n.Load()), err
}

// background runs a pass's store writes, at most backgroundWrites at a
// time, so that they share group commits; Wait returns the first error.
// (An expiry's write also closes the attempts at their providers: the
// bound keeps that polite to a provider's rate limits.)
type background struct {
	wg    sync.WaitGroup
	sem   chan struct{}
	mu    sync.Mutex
	first error
}

const backgroundWrites = 16

func (b *background) Go(fn func() error) {
	if b.sem == nil {
		b.sem = make(chan struct{}, backgroundWrites)
	}
	b.sem <- struct{}{}
	b.wg.Go(func() {
		defer func() { <-b.sem }()
		if err := fn(); err != nil {
			b.mu.Lock()
			b.first = cmp.Or(b.first, err)
			b.mu.Unlock()
		}
	})
}

func (b *background) Wait() error {
	b.wg.Wait()
	return b.first
}

// Reconcile asks providers about the open attempts that no one has asked
// about for age (since they started, or since the last time), so that a
// lost webhook still ends in the right state. It takes the orders longest
// unasked first, up to limit, and each asked order goes to the back of the
// line, whatever the answer: a pass costs what is due, not what is open,
// and no order is starved by others that stay open. It returns how many
// orders changed.
func (s *Site) Reconcile(ctx context.Context, age time.Duration, limit int) (int, error) {
	now := s.now()
	due, err := s.cfg.Store.Unasked(ctx, s.cfg.Site, now.Add(-age), limit)
	if err != nil {
		return 0, err
	}
	n := 0
	var marks background
	for _, o := range due {
		changed := false
		for _, att := range o.Waiting() {
			if !o.Status.Open() || now.Sub(att.StartedAt) < age {
				continue
			}
			c, err := s.check(ctx, o, att)
			if err != nil {
				s.log.Warn("reconciling order", zap.String("order", o.ID), zap.Error(err))
				continue
			}
			changed = changed || c
		}
		if changed {
			n++
		}
		// Marked in the background while the next order is asked about:
		// the marks of a pass share commits instead of waiting for one
		// each.
		marks.Go(func() error { return s.markAsked(ctx, o.Key, now) })
	}
	return n, marks.Wait()
}

// markAsked records that the providers of the order's waiting attempts
// were asked at now, which puts the order at the back of the reconciler's
// queue.
func (s *Site) markAsked(ctx context.Context, key order.Key, now time.Time) error {
	_, err := s.cfg.Store.Update(ctx, key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		if cur == nil {
			return nil, nil, nil
		}
		if !cur.Unasked().IsZero() {
			cur.CheckedAt = now
		}
		// Written even when nothing of it waits any more, so that the
		// store files it anew: an order that a store's migration queued
		// at once, or that an older build ended without updating the
		// queue, leaves it instead of staying at its head.
		return cur, nil, nil
	})
	if err != nil {
		return fmt.Errorf("reconciling order %s: %w", key.ID, err)
	}
	return nil
}

// checkAll asks the providers of every waiting attempt for their state,
// so that no payment in flight is missed; the first error is returned
// after all were asked.
func (s *Site) checkAll(ctx context.Context, o *order.Order) error {
	var first error
	for _, att := range o.Waiting() {
		if _, err := s.check(ctx, o, att); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// check asks the attempt's provider for its state and applies the answer.
func (s *Site) check(ctx context.Context, o *order.Order, att *order.Attempt) (bool, error) {
	p, ok := s.providers[att.Provider]
	if !ok {
		return false, nil
	}
	c, ok := p.(provider.Checker)
	if !ok {
		return false, nil
	}
	f, err := c.Check(ctx, s.Payment(Origin{}, o, att, att.Provider))
	if err != nil {
		return false, err
	}
	if f.Ref == "" {
		f.Ref = att.Ref
	}
	if f.Ref != att.Ref {
		return false, fmt.Errorf("provider %s answered about another attempt", att.Provider)
	}
	f.From = att.Provider
	_, out, err := s.Apply(ctx, order.ByReconcile, f)
	return out.Changed, err
}
