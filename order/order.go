// Package order is the payment life of one shop order: its states, the
// attempts to pay it, and the forward-only transitions between states, each
// recorded with its cause. It knows nothing of HTTP, Caddy or storage.
package order

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddy-checkout/checkout/money"
)

// State is where an order stands.
type State string

// The states of SPEC §7. pending → on_hold → paid → refunded;
// pending|on_hold → failed|cancelled|expired.
const (
	Pending   State = "pending"
	OnHold    State = "on_hold"
	Paid      State = "paid"
	Refunded  State = "refunded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Expired   State = "expired"
)

// States lists every state, in life order.
var States = []State{Pending, OnHold, Paid, Refunded, Failed, Cancelled, Expired}

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Open reports whether the order can still be paid in the normal way.
func (s State) Open() bool { return s == Pending || s == OnHold }

// Ended reports whether no payment is expected any more (failed,
// cancelled, expired). A payment that arrives anyway is a late payment.
func (s State) Ended() bool { return s == Failed || s == Cancelled || s == Expired }

// CauseKind says what moved an order.
type CauseKind string

// Causes of a transition.
const (
	ByIntake    CauseKind = "intake"    // the shop announced or changed the order
	ByWebhook   CauseKind = "webhook"   // a verified provider webhook; Ref is its event id
	ByReturn    CauseKind = "return"    // the customer's verified return from the provider
	ByReconcile CauseKind = "reconcile" // the reconciler asked the provider
	ByAdmin     CauseKind = "admin"     // an operator, through the admin API
	ByExpiry    CauseKind = "expiry"    // the order's deadline passed
	ByCustomer  CauseKind = "customer"  // the customer cancelled on our pages
	ByWatcher   CauseKind = "watcher"   // a chain or message watcher
	ByConfig    CauseKind = "config"    // no configured provider can take the order any more
	ByRetention CauseKind = "retention" // retain_personal erased the customer's data
)

// fromProvider reports whether evidence with this cause comes from a
// payment provider (as opposed to the shop, an operator or the clock).
func (k CauseKind) fromProvider() bool {
	return k == ByWebhook || k == ByReturn || k == ByReconcile || k == ByWatcher
}

// Cause is why a transition happened. Ref identifies the evidence (a
// provider event id, a transaction hash) and is what duplicate deliveries
// are recognised by.
type Cause struct {
	Kind CauseKind `json:"kind"`
	Ref  string    `json:"ref,omitempty"`
}

func (c Cause) String() string {
	if c.Ref == "" {
		return string(c.Kind)
	}
	return string(c.Kind) + ":" + c.Ref
}

// Attempt is one try at paying the order. A new generation starts when the
// shop changes the amount: events for older generations are recorded but
// change nothing. A customer who tries again after a declined payment, or
// switches provider, starts a new attempt of the same generation: a
// verified payment on any attempt of the current generation pays the
// order.
type Attempt struct {
	Generation  int          `json:"generation"`
	Ref         string       `json:"ref"` // unguessable; names the attempt in our URLs
	Amount      money.Amount `json:"amount"`
	Provider    string       `json:"provider,omitempty"`     // chosen provider, once chosen
	ProviderRef string       `json:"provider_ref,omitempty"` // the provider's id for it (session, ticket)
	Received    money.Amount `json:"received,omitzero"`      // what has arrived so far (on-chain partial payments)
	CreatedAt   time.Time    `json:"created_at"`
	StartedAt   time.Time    `json:"started_at,omitzero"` // when the provider was last started
	// ProviderData is what the provider recorded for the attempt beyond
	// its reference (a konbini slip's number, a payment id), shown to the
	// operator and given back to the provider in Payment.
	ProviderData map[string]string `json:"provider_data,omitempty"`
	// Failed is set when the provider reported the attempt failed
	// (declined): the order stays payable through a new attempt.
	Failed bool `json:"failed,omitempty"`
}

// Event is one line of an order's history. Applied is false for evidence
// that was recorded but changed nothing (a superseded attempt, a mismatch,
// a refused move).
type Event struct {
	At      time.Time    `json:"at"`
	From    State        `json:"from"`
	To      State        `json:"to"`
	Cause   Cause        `json:"cause"`
	Attempt int          `json:"attempt"`
	Applied bool         `json:"applied"`
	Amount  money.Amount `json:"amount,omitzero"`
	// Refund, on a refund's line, is the amount returned by it; Amount is
	// then the total refunded so far. A partial refund's line goes from
	// paid to paid.
	Refund      money.Amount `json:"refund,omitzero"`
	Asked       money.Amount `json:"asked,omitzero"`    // on an operator's refund: the amount asked
	Dispute     string       `json:"dispute,omitempty"` // on a dispute's line: its id
	Transaction string       `json:"transaction,omitempty"`
	Note        string       `json:"note,omitempty"`
}

// IsRefund reports whether the line records money returned to the
// customer (all of it, or part).
func (e Event) IsRefund() bool { return e.Applied && e.Refund.Valid() && !e.Refund.IsZero() }

// Key names an order: the site it belongs to and the shop's own order id.
type Key struct {
	Site string `json:"site"`
	ID   string `json:"order_id"`
}

func (k Key) String() string { return k.Site + "/" + k.ID }

// Order is a shop order as the payment side sees it.
type Order struct {
	Key
	Status      State             `json:"status"`
	Amount      money.Amount      `json:"amount"`
	Description string            `json:"description,omitempty"`
	Email       string            `json:"email,omitempty"`
	Provider    string            `json:"provider,omitempty"` // fixed by the shop, or empty for a choice
	Metadata    map[string]string `json:"metadata,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	Attempts    []Attempt         `json:"attempts"`
	Transaction string            `json:"transaction,omitempty"`
	PaidWith    string            `json:"paid_with,omitempty"` // provider that took the payment
	// PaidRef is the attempt whose payment paid the order (one of its
	// generation may have failed first), for refunds.
	PaidRef string    `json:"paid_ref,omitempty"`
	PaidAt  time.Time `json:"paid_at,omitzero"`
	// RefundedAmount is how much of the payment has gone back so far, by
	// refunds and disputes lost (Refunded). The order stays paid until
	// all of it has (then it is refunded). ProviderRefunded is the
	// provider's own total of refunds, DisputeLost the disputes lost.
	RefundedAmount   money.Amount `json:"refunded_amount,omitzero"`
	ProviderRefunded money.Amount `json:"provider_refunded,omitzero"`
	DisputeLost      money.Amount `json:"dispute_lost,omitzero"`
	Late             bool         `json:"late,omitempty"`
	// HoldUntil is how long the provider holds an on_hold payment open
	// (a konbini slip's payment deadline): until then the order is not
	// expired, whatever ExpiresAt says. Zero: the hold ends at ExpiresAt.
	HoldUntil time.Time `json:"hold_until,omitzero"`
	// CheckedAt is when the reconciler last asked the providers about the
	// order's waiting attempts (zero: never). See Unasked.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	Flags     []string  `json:"flags,omitempty"` // e.g. "overpaid"
	// Disputes are the customer's bank disputing the payment (a
	// chargeback, or an inquiry before one). While one is open the order
	// is flagged "disputed"; it stays paid.
	Disputes []Dispute `json:"disputes,omitempty"`
	// Erased lists the customer data erased under retain_personal
	// ("email", "metadata.<key>", "provider_data.<key>"), and ErasedAt
	// when; amounts, ids, states and the history stay for accounting.
	Erased   []string  `json:"erased,omitempty"`
	ErasedAt time.Time `json:"erased_at,omitzero"`
	// IdempotencyKeys are the Idempotency-Keys of the server API calls
	// that announced the order (Intake.IdempotencyKey).
	IdempotencyKeys []string `json:"idempotency_keys,omitempty"`
	History         []Event  `json:"history"`
}

// Limits on what the shop may send.
const (
	MaxIDLen          = 128
	MaxDescriptionLen = 1000
	MaxEmailLen       = 254
	MaxMetadata       = 50
)

// Errors a transition can be refused with.
var (
	ErrRefused     = errors.New("transition not allowed")
	ErrSuperseded  = errors.New("attempt superseded by a newer one")
	ErrMismatch    = errors.New("paid amount does not match the order")
	ErrUnknownRef  = errors.New("no such attempt")
	ErrInvalid     = errors.New("invalid order")
	ErrAmountFixed = errors.New("order is no longer open; its amount cannot change")
)

// ValidID checks a shop order id: 1-128 printable ASCII characters, and
// not "." or "..", which a URL path (the success page, the admin API)
// would read as a dot segment and resolve away.
func ValidID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: order id must be 1-%d characters", ErrInvalid, MaxIDLen)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: order id must not be %q (a URL path cannot carry it)", ErrInvalid, id)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("%w: order id must be printable ASCII without spaces", ErrInvalid)
		}
	}
	return nil
}

// NewRef returns an unguessable random reference (128 random bits), for
// nonces and ids; attempts take newAttemptRef.
func NewRef() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// newAttemptRef returns an attempt reference: the attempt's creation time
// in whole seconds (40 bits, the first 8 characters) then 88 random bits.
// The random part keeps it unguessable; the time in front keeps the refs
// made in one second side by side in the stores' index of refs, so that a
// commit of many new orders rewrites a few pages of that index instead of
// one page per order, however many orders are stored (BENCHMARKS.md §11).
func newAttemptRef(now time.Time) string {
	var b [16]byte
	sec := uint64(max(now.Unix(), 0))
	for i := 4; i >= 0; i-- {
		b[i] = byte(sec)
		sec >>= 8
	}
	if _, err := rand.Read(b[5:]); err != nil {
		panic(err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Current is the attempt that can pay the order now.
func (o *Order) Current() *Attempt {
	if len(o.Attempts) == 0 {
		return nil
	}
	return &o.Attempts[len(o.Attempts)-1]
}

// Deadline is when the order expires unless paid: the provider's hold
// deadline while on hold, if it gave one later than ExpiresAt, else
// ExpiresAt.
func (o *Order) Deadline() time.Time {
	if o.Status == OnHold && o.HoldUntil.After(o.ExpiresAt) {
		return o.HoldUntil
	}
	return o.ExpiresAt
}

// Waiting returns the attempts of the current generation that a provider
// may still pay: started there and not reported failed.
func (o *Order) Waiting() []*Attempt {
	if len(o.Attempts) == 0 {
		return nil
	}
	gen := o.Current().Generation
	var out []*Attempt
	for i := range o.Attempts {
		if a := &o.Attempts[i]; a.Generation == gen && !a.StartedAt.IsZero() && !a.Failed {
			out = append(out, a)
		}
	}
	return out
}

// Unasked is since when no one has asked a provider about the open
// order's waiting attempts: the later of CheckedAt and the start of the
// earliest waiting attempt. It is zero when the order is not open or has
// no attempt waiting. Stores index it (store.Store.Unasked), so that the
// reconciler's work follows the orders due for a question, however many
// orders are open, and every open order gets its turn.
func (o *Order) Unasked() time.Time {
	if !o.Status.Open() {
		return time.Time{}
	}
	var first time.Time
	for _, a := range o.Waiting() {
		if first.IsZero() || a.StartedAt.Before(first) {
			first = a.StartedAt
		}
	}
	if first.IsZero() {
		return first
	}
	if o.CheckedAt.After(first) {
		return o.CheckedAt
	}
	return first
}

// MaxRetries bounds the attempts of one generation, so that a customer
// (or a script) clicking "try again" cannot grow an order without bound.
const MaxRetries = 20

// ErrTooManyRetries refuses a new attempt past MaxRetries.
var ErrTooManyRetries = errors.New("too many payment attempts for this order")

// Retry starts a new attempt of the current generation, for a customer
// who tries again after a declined payment or chooses another provider,
// and returns it. The earlier attempts keep their references: a payment
// that still arrives on one of them pays the order.
func (o *Order) Retry(now time.Time) (*Attempt, error) {
	cur := o.Current()
	n := 0
	for _, a := range o.Attempts {
		if a.Generation == cur.Generation {
			n++
		}
	}
	if n >= MaxRetries {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRetries, n)
	}
	o.Attempts = append(o.Attempts, Attempt{Generation: cur.Generation, Ref: newAttemptRef(now), Amount: cur.Amount, CreatedAt: now})
	o.UpdatedAt = now
	return o.Current(), nil
}

// Attempt finds an attempt by its reference.
func (o *Order) Attempt(ref string) *Attempt {
	for i := range o.Attempts {
		if o.Attempts[i].Ref == ref {
			return &o.Attempts[i]
		}
	}
	return nil
}

// PaidAttempt is the attempt whose payment made the order paid, or nil
// while it has not been paid.
func (o *Order) PaidAttempt() *Attempt {
	if a := o.Attempt(o.PaidRef); o.PaidRef != "" && a != nil {
		return a
	}
	// Orders paid before PaidRef was kept: the paid generation's attempt
	// with the paying provider, latest first.
	for i := len(o.History) - 1; i >= 0; i-- {
		if ev := o.History[i]; ev.Applied && ev.To == Paid {
			var first *Attempt
			for j := len(o.Attempts) - 1; j >= 0; j-- {
				if a := &o.Attempts[j]; a.Generation == ev.Attempt {
					if a.Provider == o.PaidWith && !a.Failed {
						return a
					}
					first = a
				}
			}
			return first
		}
	}
	return nil
}

// Event is the history line of the evidence with this cause, or nil.
func (o *Order) Event(c Cause) *Event {
	if c.Ref == "" {
		return nil
	}
	for i := range o.History {
		if o.History[i].Cause == c {
			return &o.History[i]
		}
	}
	return nil
}

// Seen reports whether evidence with this cause is already in the history,
// so that a redelivered webhook is recognised however often it comes.
func (o *Order) Seen(c Cause) bool { return o.Event(c) != nil }

// Intake is what the shop says about an order.
type Intake struct {
	Key
	Amount      money.Amount
	Description string
	Email       string
	Provider    string
	Metadata    map[string]string
	Expires     time.Duration
	// ProviderData is recorded on the first attempt (Attempt.ProviderData):
	// what a provider that takes orders through its own routes (the
	// 0xBTCpay-compatible API) must remember about them.
	ProviderData map[string]string
	// IdempotencyKey is the Idempotency-Key of the server API call that
	// sent this (the store's record of the call keeps its answer, which
	// holds the customer's data), kept on the order so that
	// retain_personal can forget the record. Empty: none.
	IdempotencyKey string
}

// Validate checks everything the shop sent.
func (in Intake) Validate() error {
	if in.Site == "" {
		return fmt.Errorf("%w: no site", ErrInvalid)
	}
	if err := ValidID(in.ID); err != nil {
		return err
	}
	if !in.Amount.Valid() || in.Amount.IsZero() {
		return fmt.Errorf("%w: amount must be more than zero", ErrInvalid)
	}
	if len(in.Description) > MaxDescriptionLen {
		return fmt.Errorf("%w: description longer than %d bytes", ErrInvalid, MaxDescriptionLen)
	}
	if len(in.Email) > MaxEmailLen || strings.ContainsAny(in.Email, "\r\n<> ") {
		return fmt.Errorf("%w: e-mail address is malformed", ErrInvalid)
	}
	if len(in.Metadata) > MaxMetadata {
		return fmt.Errorf("%w: more than %d metadata entries", ErrInvalid, MaxMetadata)
	}
	if in.Expires < 0 {
		return fmt.Errorf("%w: expiry must not be negative", ErrInvalid)
	}
	return nil
}

// IntakeResult says what Receive did.
type IntakeResult int

// Results of Receive.
const (
	Created    IntakeResult = iota // a new order
	Same                           // the same order again: nothing changed
	NewAttempt                     // the amount changed: a new attempt supersedes the old
)

// New makes the order the shop announced, with its first attempt.
func New(in Intake, now time.Time, defaultExpiry time.Duration) (*Order, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	exp := in.Expires
	if exp == 0 {
		exp = defaultExpiry
	}
	o := &Order{
		Key:         in.Key,
		Status:      Pending,
		Amount:      in.Amount,
		Description: in.Description,
		Email:       in.Email,
		Provider:    in.Provider,
		Metadata:    in.Metadata,
		CreatedAt:   now,
		UpdatedAt:   now,
		ExpiresAt:   now.Add(exp),
	}
	o.Attempts = []Attempt{{Generation: 1, Ref: newAttemptRef(now), Amount: in.Amount, CreatedAt: now, ProviderData: in.ProviderData}}
	o.noteKey(in.IdempotencyKey)
	o.History = []Event{{At: now, To: Pending, Cause: Cause{Kind: ByIntake}, Attempt: 1, Applied: true, Amount: in.Amount}}
	return o, nil
}

// Receive applies the shop announcing an order that already exists. The
// same amount and currency is the same order (descriptive fields of an
// open order are refreshed). A different amount on an open order starts a
// new attempt; the old attempt can no longer pay it. A different amount on
// an order that is no longer open is refused.
func (o *Order) Receive(in Intake, now time.Time, defaultExpiry time.Duration) (IntakeResult, error) {
	if err := in.Validate(); err != nil {
		return Same, err
	}
	if o.noteKey(in.IdempotencyKey) {
		o.UpdatedAt = now
	}
	if o.Amount.Equal(in.Amount) {
		if o.Status.Open() && o.Status == Pending {
			o.Description, o.Email, o.Metadata = in.Description, in.Email, in.Metadata
			if in.Provider != "" {
				o.Provider = in.Provider
			}
		}
		return Same, nil
	}
	if o.Status != Pending {
		return Same, fmt.Errorf("%w (order is %s)", ErrAmountFixed, o.Status)
	}
	exp := in.Expires
	if exp == 0 {
		exp = defaultExpiry
	}
	gen := o.Current().Generation + 1
	o.Amount, o.Description, o.Email, o.Provider, o.Metadata = in.Amount, in.Description, in.Email, in.Provider, in.Metadata
	o.ExpiresAt = now.Add(exp)
	o.UpdatedAt = now
	o.Attempts = append(o.Attempts, Attempt{Generation: gen, Ref: newAttemptRef(now), Amount: in.Amount, CreatedAt: now})
	o.History = append(o.History, Event{At: now, From: Pending, To: Pending, Cause: Cause{Kind: ByIntake},
		Attempt: gen, Applied: true, Amount: in.Amount, Note: "amount changed: new attempt"})
	return NewAttempt, nil
}

// Transition is evidence that the order should move.
type Transition struct {
	To          State
	Ref         string // the attempt the evidence is about
	Cause       Cause
	Paid        money.Amount // for paid/on_hold: what the provider says it took
	Transaction string       // provider's transaction reference
	Provider    string       // provider that reports it
	// AcceptOver lets a payment above the amount count as paid, flagged
	// "overpaid" (on-chain payments, where the customer sets the amount).
	AcceptOver bool
	// HoldUntil, with To on_hold: how long the provider holds the payment
	// open (Order.HoldUntil).
	HoldUntil time.Time
	// Refunded, with To refunded, is the total the provider has returned
	// of the payment so far; zero means all of it. The order is refunded
	// once the total reaches its amount; before that it stays paid.
	Refunded money.Amount
	// Asked, on an operator's refund, is the amount the operator asked
	// for (kept on the history line, to recognise the request again).
	Asked money.Amount
	Note  string
}

// allowed is the forward-only state graph. A payment that arrives after the
// order ended (expired, cancelled, failed) still counts, marked late: money
// that moved is never ignored.
var allowed = map[State][]State{
	Pending:   {OnHold, Paid, Failed, Cancelled, Expired},
	OnHold:    {Paid, Failed, Cancelled, Expired},
	Paid:      {Refunded},
	Failed:    {Paid},
	Cancelled: {Paid},
	Expired:   {Paid},
	Refunded:  {},
}

// CanMove reports whether from → to is a forward move.
func CanMove(from, to State) bool {
	for _, s := range allowed[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Outcome says what Apply did.
type Outcome struct {
	Changed bool // the state moved; the shop must be told
	// AttemptFailed: the provider reported the attempt failed; it is
	// recorded, the order stays payable and the shop is not told.
	AttemptFailed bool
	Duplicate     bool  // the same evidence was seen before; nothing recorded
	Event         Event // the history line written (zero when Duplicate)
	Err           error // why the evidence changed nothing, if it did not
}

// Apply records evidence t on the order and moves it when t is a valid
// forward move for the current attempt with the right amount. It never
// returns evidence to the caller as an error to retry: refused evidence is
// recorded (Applied false) and explained in Outcome.Err.
func (o *Order) Apply(t Transition, now time.Time) Outcome {
	if o.Seen(t.Cause) {
		return Outcome{Duplicate: true}
	}
	att := o.Attempt(t.Ref)
	ev := Event{At: now, From: o.Status, To: t.To, Cause: t.Cause, Amount: t.Paid, Transaction: t.Transaction, Note: t.Note}
	refuse := func(err error) Outcome {
		ev.Applied = false
		if ev.Note == "" {
			ev.Note = err.Error()
		} else {
			ev.Note += "; " + err.Error()
		}
		if !o.recordRefusal(ev) {
			return Outcome{Duplicate: true, Err: err}
		}
		o.UpdatedAt = now
		return Outcome{Event: ev, Err: err}
	}
	if att == nil {
		return Outcome{Err: ErrUnknownRef}
	}
	ev.Attempt = att.Generation
	if !t.To.Valid() {
		return refuse(fmt.Errorf("%w: unknown state %q", ErrRefused, t.To))
	}
	if t.To == Refunded {
		return o.refund(t, ev, now, refuse)
	}
	// Refunds and admin moves concern the order as paid, whichever attempt
	// paid it; everything else must be about the current attempt.
	if t.To != Refunded && att.Generation != o.Current().Generation {
		if t.To == Paid && !hasFlag(o.Flags, "paid_superseded") {
			// Money arrived for an amount the shop replaced: the order
			// is not paid by it, and the operator must refund it.
			o.Flags = append(o.Flags, "paid_superseded")
		}
		return refuse(ErrSuperseded)
	}
	if (t.To == Expired || t.To == Cancelled) && t.Cause.Kind.fromProvider() && att.Ref != o.Current().Ref {
		// An earlier attempt ended at its provider (a session the
		// customer left for a new one): the order is the newer one's.
		return refuse(fmt.Errorf("%w: a later attempt replaced this one", ErrSuperseded))
	}
	if t.To == Failed && t.Cause.Kind.fromProvider() && o.Status.Open() {
		// A declined or failed attempt does not end the order: the
		// customer may try again or choose another provider.
		if att.Failed {
			return Outcome{Duplicate: true}
		}
		att.Failed = true
		ev.To, ev.Applied = o.Status, true
		if ev.Note == "" {
			ev.Note = "payment attempt failed at the provider; the order stays payable"
		} else {
			ev.Note = "payment attempt failed at the provider (" + ev.Note + "); the order stays payable"
		}
		o.History = append(o.History, ev)
		o.UpdatedAt = now
		return Outcome{AttemptFailed: true, Event: ev}
	}
	if t.To == Paid && o.Status == Paid && t.Transaction != "" && o.Transaction != "" && t.Transaction != o.Transaction {
		// A second, different payment for an order already paid: money
		// moved twice. Record it and flag the order for the operator.
		if !hasFlag(o.Flags, "paid_twice") {
			o.Flags = append(o.Flags, "paid_twice")
		}
		return refuse(fmt.Errorf("%w: order already paid by transaction %s; this one needs a refund", ErrRefused, o.Transaction))
	}
	if t.To == o.Status && t.To != OnHold {
		// The same news again under another cause (return after webhook).
		return Outcome{Duplicate: true}
	}
	if t.Paid.Valid() && t.Paid.Currency() != att.Amount.Currency() {
		return refuse(fmt.Errorf("%w: expected %s, provider reports %s", ErrMismatch, att.Amount.Currency(), t.Paid.Currency()))
	}
	if t.To == OnHold && o.Status == OnHold {
		// More news while on hold (a second partial payment): record it.
		// News that changes nothing (the same hold reported again) adds
		// nothing, so a provider or a tester repeating it cannot grow the
		// order without bound.
		longer := t.HoldUntil.After(o.HoldUntil)
		more := t.Paid.Valid() && !(att.Received.Valid() && t.Paid.Equal(att.Received))
		if !longer && !more {
			return Outcome{Duplicate: true}
		}
		if more {
			att.Received = t.Paid
		}
		if longer {
			o.HoldUntil = t.HoldUntil
		}
		ev.Applied = true
		o.History = append(o.History, ev)
		o.UpdatedAt = now
		return Outcome{Event: ev}
	}
	if t.To == OnHold && o.Status.Ended() && t.Paid.Valid() {
		// Part of the money arrived after the order ended: the order
		// stays ended, but what arrived is kept, so that the rest, if it
		// comes, makes it paid late.
		att.Received = t.Paid
		return refuse(fmt.Errorf("%w: %s → %s (received %s kept)", ErrRefused, o.Status, t.To, t.Paid))
	}
	if !CanMove(o.Status, t.To) {
		return refuse(fmt.Errorf("%w: %s → %s", ErrRefused, o.Status, t.To))
	}
	var flag string
	if t.To == Paid {
		if !t.Paid.Valid() || t.Paid.Currency() != att.Amount.Currency() {
			return refuse(fmt.Errorf("%w: expected %s %s, provider reports %s %s", ErrMismatch,
				att.Amount, att.Amount.Currency(), t.Paid, t.Paid.Currency()))
		}
		switch c := t.Paid.Cmp(att.Amount); {
		case c < 0:
			return refuse(fmt.Errorf("%w: expected %s %s, provider reports %s", ErrMismatch, att.Amount, att.Amount.Currency(), t.Paid))
		case c > 0 && !t.AcceptOver:
			return refuse(fmt.Errorf("%w: expected %s %s, provider reports %s", ErrMismatch, att.Amount, att.Amount.Currency(), t.Paid))
		case c > 0:
			flag = "overpaid"
		}
	}
	ev.Applied = true
	o.History = append(o.History, ev)
	if t.To == Paid || t.To == OnHold {
		// The attempt took money after all (a slip taken, or another card
		// used, in the provider's session after a decline): it is no
		// longer failed, so that it is watched, shown and closed.
		att.Failed = false
	}
	deadline := o.Deadline()
	o.Status = t.To
	o.UpdatedAt = now
	if t.To == OnHold && !t.HoldUntil.IsZero() {
		o.HoldUntil = t.HoldUntil
	}
	if t.Paid.Valid() && (t.To == Paid || t.To == OnHold) {
		att.Received = t.Paid
	}
	if t.To == Paid {
		o.PaidAt = now
		o.PaidWith = t.Provider
		o.PaidRef = att.Ref
		o.Transaction = t.Transaction
		o.Late = ev.From.Ended() || now.After(deadline)
		if flag != "" {
			o.Flags = append(o.Flags, flag)
		}
	}
	return Outcome{Changed: true, Event: ev}
}

// MaxRefusals bounds how many refused pieces of evidence one order's
// history keeps. Applied events are always kept (an order moves forward
// only a few times); refusals come from outside and could otherwise grow
// an order without bound.
const MaxRefusals = 100

// recordRefusal adds a refused event to the history unless the same
// refusal (same move, attempt, amount, transaction and reason) is already
// there or the history holds MaxRefusals refusals. It reports whether it
// added the event.
func (o *Order) recordRefusal(ev Event) bool {
	n := 0
	for _, e := range o.History {
		if e.Applied {
			continue
		}
		n++
		if e.To == ev.To && e.Attempt == ev.Attempt && e.Transaction == ev.Transaction && e.Note == ev.Note &&
			e.Amount.Valid() == ev.Amount.Valid() && (!e.Amount.Valid() || e.Amount.Equal(ev.Amount)) {
			return false
		}
	}
	if n >= MaxRefusals {
		return false
	}
	o.History = append(o.History, ev)
	return true
}

func hasFlag(flags []string, f string) bool {
	for _, v := range flags {
		if v == f {
			return true
		}
	}
	return false
}

// UnmarshalJSON reads an order as stored. Orders stored before providers
// kept their own data on attempts had 0xBTCpay's postback on the order
// (postback_url, postback_data); it moves to the first attempt's
// ProviderData, where the erc20 provider reads it.
func (o *Order) UnmarshalJSON(b []byte) error {
	type plain Order
	var aux struct {
		plain
		Postback     string `json:"postback_url"`
		PostbackData string `json:"postback_data"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*o = Order(aux.plain)
	if (aux.Postback != "" || aux.PostbackData != "") && len(o.Attempts) > 0 {
		a := &o.Attempts[0]
		if a.ProviderData == nil {
			a.ProviderData = map[string]string{}
		}
		if _, ok := a.ProviderData["oxbtcpay_data"]; !ok {
			a.ProviderData["oxbtcpay_data"] = aux.PostbackData
			if aux.Postback != "" {
				a.ProviderData["oxbtcpay_postback"] = aux.Postback
			}
		}
	}
	return nil
}
