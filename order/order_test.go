package order_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
)

var t0 = time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)

const expiry = 30 * time.Minute

func usd(s string) money.Amount { return money.MustParse(s, "USD") }

func intake(amount money.Amount) order.Intake {
	return order.Intake{
		Key:         order.Key{Site: "shop.example.com", ID: "1234567"},
		Amount:      amount,
		Description: "The e-book",
		Email:       "customer@example.com",
	}
}

func newOrder(t *testing.T) *order.Order {
	t.Helper()
	o, err := order.New(intake(usd("75.00")), t0, expiry)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return o
}

// move applies a transition that must change the order.
func move(t *testing.T, o *order.Order, to order.State, cause order.Cause, at time.Time) {
	t.Helper()
	tr := order.Transition{To: to, Ref: o.Current().Ref, Cause: cause, Provider: "sandbox"}
	if to == order.Paid || to == order.OnHold {
		tr.Paid = o.Current().Amount
		tr.Transaction = "tx-" + cause.Ref
	}
	if out := o.Apply(tr, at); !out.Changed || out.Err != nil {
		t.Fatalf("moving %s → %s by %s: Changed=%v Duplicate=%v Err=%v", o.Status, to, cause, out.Changed, out.Duplicate, out.Err)
	}
}

// orderIn builds an order in state s the way real evidence would get it
// there.
func orderIn(t *testing.T, s order.State) *order.Order {
	t.Helper()
	o := newOrder(t)
	at := t0.Add(time.Minute)
	switch s {
	case order.Pending:
	case order.OnHold:
		move(t, o, order.OnHold, order.Cause{Kind: order.ByWebhook, Ref: "evt-hold"}, at)
	case order.Paid:
		move(t, o, order.Paid, order.Cause{Kind: order.ByWebhook, Ref: "evt-paid"}, at)
	case order.Refunded:
		move(t, o, order.Paid, order.Cause{Kind: order.ByWebhook, Ref: "evt-paid"}, at)
		move(t, o, order.Refunded, order.Cause{Kind: order.ByAdmin, Ref: "refund-1"}, at.Add(time.Minute))
	case order.Failed:
		// A provider's failure fails only the attempt (TestDeclineLeavesOrderPayable);
		// the order fails when no configured provider can take it.
		move(t, o, order.Failed, order.Cause{Kind: order.ByConfig, Ref: "config-1"}, at)
	case order.Cancelled:
		move(t, o, order.Cancelled, order.Cause{Kind: order.ByCustomer, Ref: "cancel-1"}, at)
	case order.Expired:
		move(t, o, order.Expired, order.Cause{Kind: order.ByExpiry, Ref: "expiry-1"}, at)
	default:
		t.Fatalf("no way to reach state %q", s)
	}
	if o.Status != s {
		t.Fatalf("built an order in %s, want %s", o.Status, s)
	}
	return o
}

// forward is SPEC §7's graph written out independently of order.go:
// pending → on_hold → paid → refunded; pending|on_hold →
// failed|cancelled|expired; a payment after the end is still paid (late).
var forward = map[order.State][]order.State{
	order.Pending:   {order.OnHold, order.Paid, order.Failed, order.Cancelled, order.Expired},
	order.OnHold:    {order.Paid, order.Failed, order.Cancelled, order.Expired},
	order.Paid:      {order.Refunded},
	order.Refunded:  nil,
	order.Failed:    {order.Paid},
	order.Cancelled: {order.Paid},
	order.Expired:   {order.Paid},
}

func TestStatesAndCanMove(t *testing.T) {
	if len(order.States) != 7 {
		t.Fatalf("States has %d states, SPEC §7 has 7", len(order.States))
	}
	for _, from := range order.States {
		if !from.Valid() {
			t.Errorf("%s is not Valid", from)
		}
		if _, ok := forward[from]; !ok {
			t.Errorf("state %s is not in SPEC §7", from)
		}
		for _, to := range order.States {
			if got, want := order.CanMove(from, to), slices.Contains(forward[from], to); got != want {
				t.Errorf("CanMove(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range []order.State{"", "PAID", "shipped", "partial"} {
		if s.Valid() {
			t.Errorf("%q is Valid", s)
		}
	}
	for s, want := range map[order.State][2]bool{ // {Open, Ended}
		order.Pending: {true, false}, order.OnHold: {true, false}, order.Paid: {false, false},
		order.Refunded: {false, false}, order.Failed: {false, true}, order.Cancelled: {false, true}, order.Expired: {false, true},
	} {
		if s.Open() != want[0] || s.Ended() != want[1] {
			t.Errorf("%s: Open=%v Ended=%v, want %v %v", s, s.Open(), s.Ended(), want[0], want[1])
		}
	}
}

// TestTransitionMatrix tries every (from, to) pair of the 7 states with
// fresh evidence about the current attempt and the right amount.
func TestTransitionMatrix(t *testing.T) {
	for _, from := range order.States {
		for _, to := range order.States {
			t.Run(fmt.Sprintf("%s→%s", from, to), func(t *testing.T) {
				o := orderIn(t, from)
				hist := len(o.History)
				at := t0.Add(5 * time.Minute) // before the order's deadline
				tr := order.Transition{
					To:          to,
					Ref:         o.Current().Ref,
					Cause:       order.Cause{Kind: order.ByWebhook, Ref: "evt-matrix"},
					Transaction: "tx-matrix",
					Provider:    "stripe",
				}
				if to == order.Paid || to == order.OnHold {
					tr.Paid = usd("75.00")
				}
				if to == order.Failed {
					tr.Cause.Kind = order.ByConfig // a provider's failure is the attempt's
				}
				if from == order.Paid && (to == order.Paid || to == order.Refunded) {
					// The same payment reported again, or refunded (a
					// different one is TestSecondPaymentOnPaidOrderIsFlagged,
					// its refund TestRefundOfAnotherPaymentLeavesTheOrderPaid).
					tr.Transaction = o.Transaction
				}
				out := o.Apply(tr, at)

				switch {
				case from == to && to != order.OnHold:
					// The same news under another cause: nothing to record.
					if !out.Duplicate || out.Changed || out.Err != nil {
						t.Errorf("Duplicate=%v Changed=%v Err=%v; want a duplicate", out.Duplicate, out.Changed, out.Err)
					}
					if len(o.History) != hist {
						t.Errorf("history grew from %d to %d on a duplicate", hist, len(o.History))
					}
				case from == to: // on_hold → on_hold with what was already received: no news
					// (new amounts while on hold: TestOnHoldRecordsReceived)
					if out.Changed || !out.Duplicate || out.Err != nil {
						t.Errorf("Changed=%v Duplicate=%v Err=%v; want a duplicate", out.Changed, out.Duplicate, out.Err)
					}
					if len(o.History) != hist {
						t.Errorf("history grew from %d to %d on news that changed nothing", hist, len(o.History))
					}
				case slices.Contains(forward[from], to):
					if !out.Changed || out.Duplicate || out.Err != nil {
						t.Fatalf("Changed=%v Duplicate=%v Err=%v; want the move", out.Changed, out.Duplicate, out.Err)
					}
					if o.Status != to {
						t.Errorf("status %s, want %s", o.Status, to)
					}
					ev := o.History[len(o.History)-1]
					if len(o.History) != hist+1 || !ev.Applied || ev.From != from || ev.To != to || ev.Cause != tr.Cause || ev.Attempt != 1 {
						t.Errorf("history line %+v, want applied %s → %s by %s for attempt 1", ev, from, to, tr.Cause)
					}
					if out.Event.Cause != tr.Cause || !out.Event.Applied {
						t.Errorf("Outcome.Event = %+v", out.Event)
					}
					if !o.UpdatedAt.Equal(at) {
						t.Errorf("UpdatedAt = %v, want %v", o.UpdatedAt, at)
					}
					if to == order.Paid {
						if o.Late != from.Ended() {
							t.Errorf("Late = %v after %s → paid, want %v", o.Late, from, from.Ended())
						}
						if !o.PaidAt.Equal(at) || o.PaidWith != "stripe" || o.Transaction != "tx-matrix" {
							t.Errorf("PaidAt=%v PaidWith=%q Transaction=%q", o.PaidAt, o.PaidWith, o.Transaction)
						}
						if !o.Current().Received.Equal(usd("75.00")) {
							t.Errorf("Received = %v, want 75.00", o.Current().Received)
						}
						if len(o.Flags) != 0 {
							t.Errorf("Flags = %v on an exact payment", o.Flags)
						}
					}
				default:
					if out.Changed || out.Duplicate || !errors.Is(out.Err, order.ErrRefused) {
						t.Errorf("Changed=%v Duplicate=%v Err=%v; want ErrRefused", out.Changed, out.Duplicate, out.Err)
					}
					if o.Status != from {
						t.Errorf("status moved to %s on a refused move", o.Status)
					}
					if len(o.History) != hist+1 {
						t.Fatalf("refused evidence not recorded: history %d → %d", hist, len(o.History))
					}
					if ev := o.History[hist]; ev.Applied || ev.From != from || ev.To != to || ev.Cause != tr.Cause || ev.Note == "" {
						t.Errorf("refused evidence recorded as %+v", ev)
					}
					// It is recorded once: the same evidence again is a duplicate.
					if again := o.Apply(tr, at); !again.Duplicate || len(o.History) != hist+1 {
						t.Errorf("redelivered refused evidence: Duplicate=%v, history %d", again.Duplicate, len(o.History))
					}
				}
			})
		}
	}
}

func TestLatePaymentByDeadline(t *testing.T) {
	// Paid after the deadline, before the expiry worker ran: still late.
	o := newOrder(t)
	move(t, o, order.Paid, order.Cause{Kind: order.ByWebhook, Ref: "evt-1"}, t0.Add(expiry+time.Second))
	if !o.Late {
		t.Error("a payment after ExpiresAt is not marked late")
	}
	o = newOrder(t)
	move(t, o, order.Paid, order.Cause{Kind: order.ByWebhook, Ref: "evt-1"}, t0.Add(expiry))
	if o.Late {
		t.Error("a payment exactly at ExpiresAt is marked late")
	}
	// Late payments after each end state, with the late flag and the
	// money recorded.
	for _, s := range []order.State{order.Expired, order.Cancelled, order.Failed} {
		o := orderIn(t, s)
		move(t, o, order.Paid, order.Cause{Kind: order.ByWatcher, Ref: "0xabc:1"}, t0.Add(2*time.Hour))
		if o.Status != order.Paid || !o.Late || !o.Current().Received.Equal(usd("75.00")) {
			t.Errorf("%s then paid: status %s, Late %v, Received %v", s, o.Status, o.Late, o.Current().Received)
		}
	}
}

func TestDuplicateCause(t *testing.T) {
	o := newOrder(t)
	cause := order.Cause{Kind: order.ByWebhook, Ref: "evt_1"}
	tr := order.Transition{To: order.Paid, Ref: o.Current().Ref, Cause: cause, Paid: usd("75.00"), Transaction: "pi_1", Provider: "stripe"}
	if out := o.Apply(tr, t0.Add(time.Minute)); !out.Changed {
		t.Fatalf("first delivery: %+v", out)
	}
	snapshot := slices.Clone(o.History)
	for i := range 5 {
		out := o.Apply(tr, t0.Add(time.Duration(2+i)*time.Minute))
		if !out.Duplicate || out.Changed || out.Err != nil || out.Event != (order.Event{}) {
			t.Errorf("redelivery %d: %+v, want Duplicate with no event", i, out)
		}
	}
	// The same event id claiming something else is still the same evidence.
	other := tr
	other.To = order.Refunded
	if out := o.Apply(other, t0.Add(time.Hour)); !out.Duplicate {
		t.Errorf("same cause, other state: %+v, want Duplicate", out)
	}
	if !slices.Equal(o.History, snapshot) {
		t.Errorf("history changed by duplicates:\n%+v\nwant\n%+v", o.History, snapshot)
	}
	if o.Status != order.Paid || !o.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("status %s, UpdatedAt %v after duplicates", o.Status, o.UpdatedAt)
	}
	if !o.Seen(cause) || o.Seen(order.Cause{Kind: order.ByReturn, Ref: "evt_1"}) || o.Seen(order.Cause{Kind: order.ByWebhook}) {
		t.Error("Seen does not match on Kind and Ref together, or matches an empty Ref")
	}

	// The same state again under another cause (the return after the
	// webhook): a duplicate, and not recorded.
	ret := tr
	ret.Cause = order.Cause{Kind: order.ByReturn, Ref: "cs_1"}
	out := o.Apply(ret, t0.Add(2*time.Hour))
	if !out.Duplicate || out.Changed || out.Err != nil {
		t.Errorf("return after webhook: %+v, want Duplicate", out)
	}
	if len(o.History) != len(snapshot) {
		t.Errorf("return after webhook recorded: %+v", o.History[len(snapshot):])
	}
}

func TestSupersededAttempt(t *testing.T) {
	o := newOrder(t)
	oldRef := o.Current().Ref
	in := intake(usd("80.00"))
	res, err := o.Receive(in, t0.Add(time.Minute), expiry)
	if err != nil || res != order.NewAttempt {
		t.Fatalf("Receive with a new amount = %v, %v; want NewAttempt", res, err)
	}
	cur := o.Current()
	if len(o.Attempts) != 2 || cur.Generation != 2 || cur.Ref == oldRef || !cur.Amount.Equal(usd("80.00")) {
		t.Fatalf("attempts after the amount change: %+v", o.Attempts)
	}
	if !o.Amount.Equal(usd("80.00")) || o.Status != order.Pending || !o.ExpiresAt.Equal(t0.Add(time.Minute+expiry)) {
		t.Errorf("order amount %s, status %s, expires %v", o.Amount, o.Status, o.ExpiresAt)
	}
	if o.Attempt(oldRef) == nil || o.Attempt(oldRef).Generation != 1 {
		t.Error("the old attempt is no longer findable by its ref")
	}

	// The old attempt's payment is recorded but changes nothing.
	hist := len(o.History)
	for i, to := range []order.State{order.Paid, order.OnHold, order.Failed, order.Cancelled} {
		out := o.Apply(order.Transition{
			To: to, Ref: oldRef, Cause: order.Cause{Kind: order.ByWebhook, Ref: fmt.Sprintf("old-%d", i)},
			Paid: usd("75.00"), Transaction: "tx-old", Provider: "sandbox",
		}, t0.Add(2*time.Minute))
		if out.Changed || !errors.Is(out.Err, order.ErrSuperseded) {
			t.Errorf("old attempt → %s: Changed=%v Err=%v, want ErrSuperseded", to, out.Changed, out.Err)
		}
		ev := o.History[len(o.History)-1]
		if len(o.History) != hist+i+1 || ev.Applied || ev.Attempt != 1 || ev.To != to {
			t.Errorf("old attempt's evidence recorded as %+v", ev)
		}
	}
	if o.Status != order.Pending || o.Transaction != "" || o.Attempt(oldRef).Received.Valid() {
		t.Fatalf("the superseded attempt changed the order: %s, tx %q", o.Status, o.Transaction)
	}
	if len(o.Flags) != 1 || o.Flags[0] != "paid_superseded" {
		t.Fatalf("flags %v, want paid_superseded once: the money taken for the old amount needs a refund", o.Flags)
	}

	// The new attempt pays with the new amount, not the old one.
	out := o.Apply(order.Transition{To: order.Paid, Ref: cur.Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "new-0"},
		Paid: usd("75.00"), Provider: "sandbox"}, t0.Add(3*time.Minute))
	if out.Changed || !errors.Is(out.Err, order.ErrMismatch) {
		t.Errorf("new attempt paid with the old amount: Changed=%v Err=%v", out.Changed, out.Err)
	}
	out = o.Apply(order.Transition{To: order.Paid, Ref: cur.Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "new-1"},
		Paid: usd("80.00"), Transaction: "tx-new", Provider: "sandbox"}, t0.Add(3*time.Minute))
	if !out.Changed || out.Err != nil || o.Status != order.Paid || o.Transaction != "tx-new" || out.Event.Attempt != 2 {
		t.Errorf("new attempt's payment: %+v, status %s", out, o.Status)
	}

	// A refund concerns the order as paid, whichever ref it names.
	out = o.Apply(order.Transition{To: order.Refunded, Ref: cur.Ref, Cause: order.Cause{Kind: order.ByAdmin, Ref: "r1"}}, t0.Add(time.Hour))
	if !out.Changed || o.Status != order.Refunded {
		t.Errorf("refund: %+v, status %s", out, o.Status)
	}
}

func TestReceive(t *testing.T) {
	t.Run("same-amount-refreshes-pending", func(t *testing.T) {
		o := newOrder(t)
		in := intake(usd("75"))
		in.Description, in.Email, in.Provider = "New text", "other@example.com", "stripe"
		in.Metadata = map[string]string{"cart": "9"}
		res, err := o.Receive(in, t0.Add(time.Minute), expiry)
		if err != nil || res != order.Same {
			t.Fatalf("Receive same amount = %v, %v; want Same", res, err)
		}
		if len(o.Attempts) != 1 || o.Description != "New text" || o.Email != "other@example.com" || o.Provider != "stripe" || o.Metadata["cart"] != "9" {
			t.Errorf("pending order not refreshed: %+v", o)
		}
		in.Provider = ""
		if _, err := o.Receive(in, t0.Add(2*time.Minute), expiry); err != nil || o.Provider != "stripe" {
			t.Errorf("an empty provider cleared the chosen one: %q, %v", o.Provider, err)
		}
	})
	t.Run("same-amount-on-paid", func(t *testing.T) {
		o := orderIn(t, order.Paid)
		hist, desc := len(o.History), o.Description
		in := intake(usd("75.00"))
		in.Description = "changed"
		res, err := o.Receive(in, t0.Add(time.Hour), expiry)
		if err != nil || res != order.Same || o.Status != order.Paid || len(o.History) != hist || o.Description != desc {
			t.Errorf("Receive same amount on a paid order = %v, %v; order %s, description %q", res, err, o.Status, o.Description)
		}
	})
	for _, s := range []order.State{order.OnHold, order.Paid, order.Refunded, order.Failed, order.Cancelled, order.Expired} {
		t.Run("other-amount-on-"+string(s), func(t *testing.T) {
			o := orderIn(t, s)
			hist, attempts := len(o.History), len(o.Attempts)
			res, err := o.Receive(intake(usd("80.00")), t0.Add(time.Hour), expiry)
			if !errors.Is(err, order.ErrAmountFixed) || res != order.Same {
				t.Errorf("Receive another amount on a %s order = %v, %v; want ErrAmountFixed", s, res, err)
			}
			if len(o.Attempts) != attempts || len(o.History) != hist || !o.Amount.Equal(usd("75.00")) || o.Status != s {
				t.Errorf("refused Receive changed the order: %+v", o)
			}
		})
	}
	t.Run("other-currency-is-new-attempt", func(t *testing.T) {
		o := newOrder(t)
		res, err := o.Receive(intake(money.MustParse("75.00", "EUR")), t0.Add(time.Minute), expiry)
		if err != nil || res != order.NewAttempt || o.Amount.Currency() != "EUR" {
			t.Errorf("Receive 75.00 EUR on a 75.00 USD order = %v, %v", res, err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		o := newOrder(t)
		in := intake(usd("80.00"))
		in.Email = "a@b\r\nBcc: x"
		if _, err := o.Receive(in, t0, expiry); !errors.Is(err, order.ErrInvalid) || len(o.Attempts) != 1 {
			t.Errorf("Receive of an invalid intake = %v, attempts %d", err, len(o.Attempts))
		}
	})
}

func TestAmountMismatch(t *testing.T) {
	zero, _ := money.FromMinor(new(big.Int), "USD")
	for _, tc := range []struct {
		name       string
		paid       money.Amount
		acceptOver bool
	}{
		{"less", usd("74.99"), false},
		{"less-accept-over", usd("74.99"), true},
		{"more", usd("75.01"), false},
		{"other-currency", money.MustParse("75.00", "EUR"), false},
		{"other-currency-accept-over", money.MustParse("7500", "JPY"), true},
		{"none", money.Amount{}, false},
		{"zero", zero, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, from := range []order.State{order.Pending, order.OnHold, order.Expired} {
				o := orderIn(t, from)
				hist := len(o.History)
				out := o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-mm"},
					Paid: tc.paid, AcceptOver: tc.acceptOver, Transaction: "tx-mm", Provider: "sandbox"}, t0.Add(5*time.Minute))
				if out.Changed || !errors.Is(out.Err, order.ErrMismatch) {
					t.Errorf("from %s: paid %s %s: Changed=%v Err=%v; want ErrMismatch", from, tc.paid, tc.paid.Currency(), out.Changed, out.Err)
				}
				if o.Status != from || o.Transaction != "" || !o.PaidAt.IsZero() {
					t.Errorf("from %s: a mismatch moved the order to %s", from, o.Status)
				}
				if len(o.History) != hist+1 {
					t.Fatalf("from %s: mismatch not recorded", from)
				}
				ev := o.History[hist]
				if ev.Applied || ev.To != order.Paid || ev.Transaction != "tx-mm" || !strings.Contains(ev.Note, "does not match") {
					t.Errorf("from %s: mismatch recorded as %+v", from, ev)
				}
				if tc.paid.Valid() && !ev.Amount.Equal(tc.paid) {
					t.Errorf("from %s: recorded amount %v, want what the provider reported", from, ev.Amount)
				}
				// Correct evidence later still pays.
				move(t, o, order.Paid, order.Cause{Kind: order.ByReconcile, Ref: "rec-1"}, t0.Add(6*time.Minute))
			}
		})
	}
}

func TestOverpaymentAccepted(t *testing.T) {
	o := newOrder(t)
	out := o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByWatcher, Ref: "0xtx:3"},
		Paid: usd("80.00"), AcceptOver: true, Transaction: "0xtx", Provider: "erc20"}, t0.Add(time.Minute))
	if !out.Changed || out.Err != nil || o.Status != order.Paid {
		t.Fatalf("overpayment with AcceptOver: %+v", out)
	}
	if !slices.Equal(o.Flags, []string{"overpaid"}) {
		t.Errorf("Flags = %v, want [overpaid]", o.Flags)
	}
	if !o.Current().Received.Equal(usd("80.00")) {
		t.Errorf("Received = %v, want the 80.00 that arrived", o.Current().Received)
	}
	if o.Late {
		t.Error("an in-time overpayment is marked late")
	}
}

func TestOnHoldRecordsReceived(t *testing.T) {
	o := newOrder(t)
	ref := o.Current().Ref
	apply := func(to order.State, paid string, evt string, at time.Duration) order.Outcome {
		return o.Apply(order.Transition{To: to, Ref: ref, Cause: order.Cause{Kind: order.ByWatcher, Ref: evt},
			Paid: usd(paid), Transaction: evt, Provider: "erc20"}, t0.Add(at))
	}
	// A first partial payment puts the order on hold.
	if out := apply(order.OnHold, "30.00", "tx1", time.Minute); !out.Changed || o.Status != order.OnHold {
		t.Fatalf("first partial: %+v", out)
	}
	if !o.Current().Received.Equal(usd("30.00")) {
		t.Errorf("Received = %v after 30.00", o.Current().Received)
	}
	// A second one is recorded with the new total, and the order stays on hold.
	hist := len(o.History)
	out := apply(order.OnHold, "60.00", "tx2", 2*time.Minute)
	if out.Changed || out.Duplicate || out.Err != nil || o.Status != order.OnHold {
		t.Errorf("second partial: %+v, status %s", out, o.Status)
	}
	if !o.Current().Received.Equal(usd("60.00")) || len(o.History) != hist+1 || !o.History[hist].Applied {
		t.Errorf("second partial not recorded: Received %v, history %+v", o.Current().Received, o.History[hist:])
	}
	if !o.UpdatedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("UpdatedAt = %v", o.UpdatedAt)
	}
	// Claiming paid with the partial total is a mismatch; it stays on hold
	// with the received amount.
	if out := apply(order.Paid, "60.00", "tx2-paid", 3*time.Minute); out.Changed || !errors.Is(out.Err, order.ErrMismatch) {
		t.Errorf("paid with 60.00 of 75.00: %+v", out)
	}
	if o.Status != order.OnHold || !o.Current().Received.Equal(usd("60.00")) {
		t.Errorf("after under-payment: status %s, Received %v", o.Status, o.Current().Received)
	}
	if out := apply(order.Paid, "75.00", "tx3", 4*time.Minute); !out.Changed || o.Status != order.Paid {
		t.Errorf("full payment: %+v", out)
	}
	if !o.Current().Received.Equal(usd("75.00")) {
		t.Errorf("Received = %v after full payment", o.Current().Received)
	}
}

func TestUnknownRefAndState(t *testing.T) {
	o := newOrder(t)
	before := *o
	hist := slices.Clone(o.History)
	for _, ref := range []string{"", "nosuchref", strings.ToUpper(o.Current().Ref)} {
		out := o.Apply(order.Transition{To: order.Paid, Ref: ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-" + ref},
			Paid: usd("75.00")}, t0.Add(time.Minute))
		if out.Changed || out.Duplicate || !errors.Is(out.Err, order.ErrUnknownRef) || out.Event != (order.Event{}) {
			t.Errorf("ref %q: %+v, want ErrUnknownRef and no event", ref, out)
		}
	}
	if !slices.Equal(o.History, hist) || o.Status != before.Status || !o.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("unknown refs changed the order: %+v", o.History)
	}

	out := o.Apply(order.Transition{To: "shipped", Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByAdmin, Ref: "a1"}}, t0.Add(time.Minute))
	if out.Changed || !errors.Is(out.Err, order.ErrRefused) || o.Status != order.Pending {
		t.Errorf("unknown state: %+v", out)
	}
	if len(o.History) != len(hist)+1 || o.History[len(hist)].Applied {
		t.Errorf("unknown state not recorded as refused: %+v", o.History)
	}
}

func TestNew(t *testing.T) {
	in := intake(usd("75.00"))
	in.Provider = "cyclos"
	in.Metadata = map[string]string{"k": "v"}
	o, err := order.New(in, t0, expiry)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != order.Pending || o.Key != in.Key || !o.Amount.Equal(in.Amount) || o.Provider != "cyclos" {
		t.Errorf("New: %+v", o)
	}
	if !o.ExpiresAt.Equal(t0.Add(expiry)) || !o.CreatedAt.Equal(t0) {
		t.Errorf("ExpiresAt %v, CreatedAt %v", o.ExpiresAt, o.CreatedAt)
	}
	if len(o.Attempts) != 1 || o.Current().Generation != 1 || !o.Current().Amount.Equal(in.Amount) || o.Current().Ref == "" {
		t.Errorf("attempts %+v", o.Attempts)
	}
	if len(o.History) != 1 || o.History[0].To != order.Pending || !o.History[0].Applied || o.History[0].Cause.Kind != order.ByIntake {
		t.Errorf("history %+v", o.History)
	}
	in.Expires = 10 * time.Minute
	if o, _ := order.New(in, t0, expiry); !o.ExpiresAt.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("the shop's Expires was not used: %v", o.ExpiresAt)
	}
	var empty order.Order
	if empty.Current() != nil {
		t.Error("Current of an order without attempts is not nil")
	}
}

func TestIntakeValidate(t *testing.T) {
	meta := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprint("k", i)] = "v"
		}
		return m
	}
	for _, tc := range []struct {
		name string
		edit func(*order.Intake)
		ok   bool
	}{
		{"ok", func(*order.Intake) {}, true},
		{"ok/id-128", func(in *order.Intake) { in.ID = strings.Repeat("a", 128) }, true},
		{"ok/id-punctuation", func(in *order.Intake) { in.ID = "A-1_2.3/4#~!" }, true},
		{"ok/description-1000", func(in *order.Intake) { in.Description = strings.Repeat("d", 1000) }, true},
		{"ok/email-empty", func(in *order.Intake) { in.Email = "" }, true},
		{"ok/metadata-50", func(in *order.Intake) { in.Metadata = meta(50) }, true},
		{"fail/no-site", func(in *order.Intake) { in.Site = "" }, false},
		{"fail/id-empty", func(in *order.Intake) { in.ID = "" }, false},
		{"fail/id-space", func(in *order.Intake) { in.ID = "12 34" }, false},
		{"fail/id-tab", func(in *order.Intake) { in.ID = "12\t34" }, false},
		{"fail/id-crlf", func(in *order.Intake) { in.ID = "12\r\nX-Checkout-Status: paid" }, false},
		{"fail/id-non-ascii", func(in *order.Intake) { in.ID = "注文1" }, false},
		{"fail/id-del", func(in *order.Intake) { in.ID = "12\x7f" }, false},
		{"fail/id-nul", func(in *order.Intake) { in.ID = "12\x00" }, false},
		{"ok/id-dots", func(in *order.Intake) { in.ID = "..." }, true},
		{"fail/id-dot", func(in *order.Intake) { in.ID = "." }, false},
		{"fail/id-dotdot", func(in *order.Intake) { in.ID = ".." }, false},
		{"fail/id-129", func(in *order.Intake) { in.ID = strings.Repeat("a", 129) }, false},
		{"fail/amount-missing", func(in *order.Intake) { in.Amount = money.Amount{} }, false},
		{"fail/amount-zero", func(in *order.Intake) { in.Amount, _ = money.FromMinor(new(big.Int), "USD") }, false},
		{"fail/description-1001", func(in *order.Intake) { in.Description = strings.Repeat("d", 1001) }, false},
		{"fail/email-crlf", func(in *order.Intake) { in.Email = "a@example.com\r\nBcc: b@example.com" }, false},
		{"fail/email-lf", func(in *order.Intake) { in.Email = "a@example.com\nx" }, false},
		{"fail/email-angle", func(in *order.Intake) { in.Email = "<a@example.com>" }, false},
		{"fail/email-255", func(in *order.Intake) { in.Email = strings.Repeat("a", 243) + "@example.com" }, false},
		{"fail/metadata-51", func(in *order.Intake) { in.Metadata = meta(51) }, false},
		{"fail/expires-negative", func(in *order.Intake) { in.Expires = -time.Second }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := intake(usd("75.00"))
			tc.edit(&in)
			err := in.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, order.ErrInvalid) {
				t.Errorf("Validate() = %v, want it to wrap ErrInvalid", err)
			}
			if _, nerr := order.New(in, t0, expiry); (nerr == nil) != tc.ok {
				t.Errorf("New disagrees with Validate: %v", nerr)
			}
		})
	}
}

func TestNewRef(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z2-7]{26}$`)
	seen := make(map[string]bool, 10000)
	for range 10000 {
		r := order.NewRef()
		if !shape.MatchString(r) {
			t.Fatalf("NewRef() = %q, want 26 lowercase base32 characters", r)
		}
		if seen[r] {
			t.Fatalf("NewRef() repeated %q", r)
		}
		seen[r] = true
	}
}

func TestOrderJSONRoundTrip(t *testing.T) {
	o := orderIn(t, order.Refunded)
	o.Metadata = map[string]string{"cart": "42"}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back order.Order
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if back.Status != order.Refunded || back.Key != o.Key || !back.Amount.Equal(o.Amount) || back.Transaction != o.Transaction ||
		len(back.History) != len(o.History) || back.Current().Ref != o.Current().Ref || !back.Current().Received.Equal(usd("75.00")) ||
		!back.PaidAt.Equal(o.PaidAt) || back.Metadata["cart"] != "42" {
		t.Errorf("JSON round trip:\n%+v\nwant\n%+v", back, *o)
	}
	for i := range o.History {
		if back.History[i].Cause != o.History[i].Cause || back.History[i].Applied != o.History[i].Applied {
			t.Errorf("history line %d: %+v, want %+v", i, back.History[i], o.History[i])
		}
	}
}

func TestSecondPaymentOnPaidOrderIsFlagged(t *testing.T) {
	now := time.Now()
	o, err := order.New(order.Intake{Key: order.Key{Site: "s", ID: "1"}, Amount: money.MustParse("5.00", "USD")}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ref := o.Current().Ref
	if out := o.Apply(order.Transition{To: order.Paid, Ref: ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "e1"}, Paid: money.MustParse("5.00", "USD"), Transaction: "t1"}, now); !out.Changed {
		t.Fatal(out.Err)
	}
	out := o.Apply(order.Transition{To: order.Paid, Ref: ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "e2"}, Paid: money.MustParse("5.00", "USD"), Transaction: "t2"}, now)
	if out.Changed || out.Duplicate || !errors.Is(out.Err, order.ErrRefused) {
		t.Fatalf("second payment: %+v", out)
	}
	if !slices.Contains(o.Flags, "paid_twice") || o.Transaction != "t1" || o.History[len(o.History)-1].Transaction != "t2" {
		t.Fatalf("second payment not recorded: flags %v history %+v", o.Flags, o.History[len(o.History)-1])
	}
	// The same transaction again is a plain duplicate.
	if out := o.Apply(order.Transition{To: order.Paid, Ref: ref, Cause: order.Cause{Kind: order.ByReturn}, Paid: money.MustParse("5.00", "USD"), Transaction: "t1"}, now); !out.Duplicate {
		t.Fatalf("same transaction again: %+v", out)
	}
}

func TestOnHoldOtherCurrencyRefused(t *testing.T) {
	now := time.Now()
	o, _ := order.New(order.Intake{Key: order.Key{Site: "s", ID: "1"}, Amount: money.MustParse("5.00", "USD")}, now, time.Hour)
	out := o.Apply(order.Transition{To: order.OnHold, Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByWatcher, Ref: "x"}, Paid: money.MustParse("500", "JPY")}, now)
	if out.Changed || !errors.Is(out.Err, order.ErrMismatch) || o.Current().Received.Valid() {
		t.Fatalf("other currency on hold: %+v received %v", out, o.Current().Received)
	}
}

// TestRepeatedEvidenceDoesNotGrowTheHistory: a hold reported again and
// again (a tester posting "Pay later" thousands of times) and the same
// refusal under ever new event ids add nothing; refusals are bounded.
func TestRepeatedEvidenceDoesNotGrowTheHistory(t *testing.T) {
	o := orderIn(t, order.OnHold)
	hist := len(o.History)
	for i := range 1000 {
		o.Apply(order.Transition{To: order.OnHold, Ref: o.Current().Ref,
			Cause: order.Cause{Kind: order.ByWebhook, Ref: fmt.Sprint("evt-hold-", i)}}, t0.Add(time.Minute))
		o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Paid: usd("1.00"), Transaction: "tx-short",
			Cause: order.Cause{Kind: order.ByWebhook, Ref: fmt.Sprint("evt-short-", i)}}, t0.Add(time.Minute))
	}
	if got := len(o.History); got != hist+1 {
		t.Fatalf("history has %d events after 2000 repeats, want %d (one refusal of the short payment)", got, hist+1)
	}
	for i := range 1000 {
		o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Paid: usd("1.00"), Transaction: fmt.Sprint("tx-", i),
			Cause: order.Cause{Kind: order.ByWebhook, Ref: fmt.Sprint("evt-distinct-", i)}}, t0.Add(time.Minute))
	}
	refused := 0
	for _, e := range o.History {
		if !e.Applied {
			refused++
		}
	}
	if refused != order.MaxRefusals {
		t.Fatalf("%d refusals kept after 1000 distinct ones, want the bound %d", refused, order.MaxRefusals)
	}
	// A real payment still moves the order once the bound is reached.
	if out := o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Paid: usd("75.00"), Transaction: "tx-real",
		Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-real"}}, t0.Add(time.Minute)); !out.Changed || o.Status != order.Paid {
		t.Fatalf("real payment after the bound: Changed=%v status %s err %v", out.Changed, o.Status, out.Err)
	}
}

// TestDeclineLeavesOrderPayable: a provider's failed (declined) attempt is
// recorded but changes no order state and tells the shop nothing; a retry
// starts a new attempt of the same generation, and a payment on either
// attempt pays the order; a second payment is flagged paid_twice.
func TestDeclineLeavesOrderPayable(t *testing.T) {
	o := newOrder(t)
	first := o.Current().Ref
	hist := len(o.History)
	out := o.Apply(order.Transition{To: order.Failed, Ref: first, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-declined"}, Note: "card declined"}, t0.Add(time.Minute))
	if out.Changed || !out.AttemptFailed || out.Err != nil || o.Status != order.Pending {
		t.Fatalf("decline: Changed=%v AttemptFailed=%v Err=%v status %s; want the attempt failed, the order pending", out.Changed, out.AttemptFailed, out.Err, o.Status)
	}
	if !o.Attempt(first).Failed || len(o.History) != hist+1 || !strings.Contains(o.History[hist].Note, "card declined") {
		t.Fatalf("decline not in the history or on the attempt: %+v %+v", o.Attempt(first), o.History[hist:])
	}
	if again := o.Apply(order.Transition{To: order.Failed, Ref: first, Cause: order.Cause{Kind: order.ByReturn}}, t0.Add(time.Minute)); !again.Duplicate || len(o.History) != hist+1 {
		t.Fatalf("the same decline again: %+v, history %d", again, len(o.History))
	}
	retry, err := o.Retry(t0.Add(2 * time.Minute))
	if err != nil || retry.Generation != 1 || retry.Ref == first || o.Current() != retry || retry.Failed {
		t.Fatalf("Retry = %+v, %v; want a fresh attempt of generation 1", retry, err)
	}
	// The first attempt's session was still open at the provider, and the
	// customer paid there after all: it pays the order, as one of this
	// generation.
	move2 := o.Apply(order.Transition{To: order.Paid, Ref: first, Paid: usd("75.00"), Transaction: "tx-1",
		Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-paid-1"}}, t0.Add(3*time.Minute))
	if !move2.Changed || o.Status != order.Paid || slices.Contains(o.Flags, "paid_superseded") {
		t.Fatalf("payment on the first attempt: %+v, status %s flags %v", move2, o.Status, o.Flags)
	}
	o.Apply(order.Transition{To: order.Paid, Ref: retry.Ref, Paid: usd("75.00"), Transaction: "tx-2",
		Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-paid-2"}}, t0.Add(4*time.Minute))
	if o.Transaction != "tx-1" || !slices.Contains(o.Flags, "paid_twice") {
		t.Fatalf("second payment: transaction %s flags %v; want tx-1 kept and paid_twice", o.Transaction, o.Flags)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	o := newOrder(t)
	for i := 1; i < order.MaxRetries; i++ {
		if _, err := o.Retry(t0); err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
	}
	if _, err := o.Retry(t0); !errors.Is(err, order.ErrTooManyRetries) || len(o.Attempts) != order.MaxRetries {
		t.Fatalf("retry past the bound: %v, %d attempts", err, len(o.Attempts))
	}
	// A new amount is a new generation, with its own tries.
	in := intake(usd("80.00"))
	if _, err := o.Receive(in, t0, expiry); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Retry(t0); err != nil {
		t.Fatalf("retry in a new generation: %v", err)
	}
}

// TestHoldLastsUntilTheProvidersDeadline: an on_hold order's deadline is
// the provider's hold deadline (a konbini slip's, days away), not the
// pending expiry; a payment within it is not late.
func TestHoldLastsUntilTheProvidersDeadline(t *testing.T) {
	o := newOrder(t)
	hold := t0.Add(72 * time.Hour)
	out := o.Apply(order.Transition{To: order.OnHold, Ref: o.Current().Ref, HoldUntil: hold,
		Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-hold"}}, t0.Add(time.Minute))
	if !out.Changed || !o.Deadline().Equal(hold) || !o.HoldUntil.Equal(hold) {
		t.Fatalf("hold: %+v, deadline %s, want %s", out, o.Deadline(), hold)
	}
	if !newOrder(t).Deadline().Equal(t0.Add(expiry)) {
		t.Fatal("a pending order's deadline is not its expiry")
	}
	o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Paid: usd("75.00"), Transaction: "tx",
		Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-paid"}}, t0.Add(48*time.Hour))
	if o.Status != order.Paid || o.Late {
		t.Fatalf("paid within the hold: status %s late %v; want paid, not late", o.Status, o.Late)
	}
}

// TestStoredPostbackMovesToTheAttempt: an order stored with 0xBTCpay's
// postback on the order itself reads back with it on its first attempt,
// where the erc20 provider looks for it.
func TestStoredPostbackMovesToTheAttempt(t *testing.T) {
	stored, err := json.Marshal(newOrder(t))
	if err != nil {
		t.Fatal(err)
	}
	raw := strings.Replace(string(stored), `"history":`, `"postback_url":"https://shop.example/pb","postback_data":"{\"order_id\":\"444\"}","history":`, 1)
	var o order.Order
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatal(err)
	}
	pd := o.Attempts[0].ProviderData
	if pd["oxbtcpay_postback"] != "https://shop.example/pb" || pd["oxbtcpay_data"] != `{"order_id":"444"}` {
		t.Fatalf("provider data after reading a stored postback: %v", pd)
	}
	b, _ := json.Marshal(&o)
	if strings.Contains(string(b), `"postback_url"`) {
		t.Fatalf("the order still writes postback_url: %s", b)
	}
}

func TestEarlierAttemptsEndDoesNotEndTheOrder(t *testing.T) {
	o := newOrder(t)
	first := o.Current().Ref
	o.Apply(order.Transition{To: order.Failed, Ref: first, Cause: order.Cause{Kind: order.ByReturn}}, t0.Add(time.Minute))
	if _, err := o.Retry(t0.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, to := range []order.State{order.Cancelled, order.Expired} {
		out := o.Apply(order.Transition{To: to, Ref: first, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-old-" + string(to)}}, t0.Add(3*time.Minute))
		if out.Changed || !errors.Is(out.Err, order.ErrSuperseded) || o.Status != order.Pending {
			t.Fatalf("the first attempt's session %s: %+v, order %s; want refused, the order pending", to, out, o.Status)
		}
	}
	// The order's own expiry, and the current attempt's end, still apply.
	if out := o.Apply(order.Transition{To: order.Expired, Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-cur"}}, t0.Add(4*time.Minute)); !out.Changed {
		t.Fatalf("the current attempt's expiry: %+v", out)
	}
}

func TestAttemptThatTookMoneyIsNotFailed(t *testing.T) {
	o := newOrder(t)
	first := o.Current().Ref
	o.Apply(order.Transition{To: order.Failed, Ref: first, Cause: order.Cause{Kind: order.ByReturn}}, t0.Add(time.Minute))
	retry, err := o.Retry(t0.Add(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	retry.Provider = "stripe"
	o.Apply(order.Transition{To: order.Failed, Ref: retry.Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-declined"}}, t0.Add(3*time.Minute))
	// The provider's session stayed open after the decline, and the
	// customer took a slip in it.
	if out := o.Apply(order.Transition{To: order.OnHold, Ref: retry.Ref, Paid: usd("75.00"), Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-slip"}}, t0.Add(4*time.Minute)); !out.Changed || o.Attempt(retry.Ref).Failed {
		t.Fatalf("slip after a decline: %+v, attempt failed=%v", out, o.Attempt(retry.Ref).Failed)
	}
	o.Apply(order.Transition{To: order.Paid, Ref: retry.Ref, Paid: usd("75.00"), Transaction: "tx-2", Provider: "stripe", Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-paid"}}, t0.Add(5*time.Minute))
	if a := o.PaidAttempt(); a == nil || a.Ref != retry.Ref {
		t.Fatalf("PaidAttempt = %+v, want the second attempt, which paid", a)
	}
}

// Attempt refs made in one second share their first 8 characters (the
// time, so that the stores' ref index takes them side by side) and are
// otherwise random: 26 characters of base32, none alike.
func TestAttemptRefsOfOneSecondShareAPrefix(t *testing.T) {
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	refAt := func(at time.Time, id string) string {
		t.Helper()
		o, err := order.New(order.Intake{Key: order.Key{Site: "s", ID: id}, Amount: money.MustParse("1.00", "USD")}, at, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return o.Current().Ref
	}
	seen := map[string]bool{}
	first := refAt(now, "0")
	for i := range 1000 {
		ref := refAt(now.Add(time.Duration(i)*time.Millisecond%time.Second), strconv.Itoa(i))
		if len(ref) != 26 || strings.Trim(ref, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("ref %q: want 26 characters of lower-case base32", ref)
		}
		if ref[:8] != first[:8] {
			t.Fatalf("refs of one second %q and %q differ in their first 8 characters", first, ref)
		}
		if seen[ref] {
			t.Fatalf("ref %q made twice", ref)
		}
		seen[ref] = true
	}
	if later := refAt(now.Add(time.Second), "x"); later[:8] == first[:8] {
		t.Fatalf("refs a second apart %q and %q share their time", first, later)
	}
}
