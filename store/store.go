// Package store is the durable record of orders and of the outbox of shop
// callbacks. The Store interface is what the rest of caddy-checkout uses;
// store/bolt is the embedded default implementation.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-checkout/checkout/order"
)

// ErrNotFound is returned when an order, attempt or delivery does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnavailable marks a store that could not be reached or opened.
var ErrUnavailable = errors.New("store unavailable")

// Unavailable reports whether err means that the store could not be
// reached or did not answer in time (PostgreSQL down, restarting, out of
// connections, a statement timed out), rather than that it refused what
// was asked. Nothing was written, and the same request may succeed
// later: customers get a 503 page, providers' webhooks a 503 so that they
// retry, the API a 503.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// A server's answer that it cannot serve now (SQLSTATE classes 08:
	// connection exception, 53: insufficient resources, 57: operator
	// intervention such as a shutdown or a statement timeout), read
	// through the SQLState method of PostgreSQL drivers' errors.
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		c := se.SQLState()
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") || strings.HasPrefix(c, "57")
	}
	return false
}

// DeliveryState is where a shop callback stands.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"   // waiting for its next try
	DeliveryDelivered DeliveryState = "delivered" // the shop answered 2xx
	DeliveryGone      DeliveryState = "gone"      // the shop answered 410: stopped
	DeliveryDead      DeliveryState = "dead"      // still failing after the retry horizon
)

// Valid reports whether s is one of the delivery states.
func (s DeliveryState) Valid() bool {
	switch s {
	case DeliveryPending, DeliveryDelivered, DeliveryGone, DeliveryDead:
		return true
	}
	return false
}

// Delivery is one shop callback (a Standard Webhooks message) in the
// outbox. It is written in the same transaction as the state change it
// reports, and its ID is the webhook-id on every try.
type Delivery struct {
	ID      string `json:"id"`
	Site    string `json:"site"`
	OrderID string `json:"order_id"`
	// Seq orders one order's deliveries: the shop gets them in Seq order,
	// and a delivery is not tried while an earlier one of its order is
	// pending. Deliveries of different orders never wait for each other.
	Seq uint64 `json:"seq"`
	// Queue names the line the delivery waits in: the shop's callbacks
	// ("") and each provider's own messages (a 0xBTCpay postback,
	// "erc20.postback") go out in Seq order within their line, and a line
	// that keeps failing never holds up another.
	Queue      string        `json:"queue,omitempty"`
	Type       string        `json:"type"` // "order.paid", ...
	URL        string        `json:"url"`
	Body       []byte        `json:"body"` // exact bytes that are signed and sent
	State      DeliveryState `json:"state"`
	Tries      int           `json:"tries"` // times sent so far (since the last manual retry), the delivering one included
	CreatedAt  time.Time     `json:"created_at"`
	RetryFrom  time.Time     `json:"retry_from"` // start of the retry horizon (reset by a manual retry)
	NextAt     time.Time     `json:"next_at"`
	LastAt     time.Time     `json:"last_at,omitzero"`
	LastStatus int           `json:"last_status,omitempty"`
	LastError  string        `json:"last_error,omitempty"`
}

// ForOrder checks a delivery that an Update adds to the order under key,
// and fills what it leaves empty: the order's Site and OrderID, and the
// pending State. Its Seq is the store's to give.
func (d *Delivery) ForOrder(key order.Key) error {
	if d.ID == "" {
		return fmt.Errorf("adding a delivery to order %s: empty id", key)
	}
	if d.Site == "" {
		d.Site = key.Site
	}
	if d.OrderID == "" {
		d.OrderID = key.ID
	}
	if d.Site != key.Site || d.OrderID != key.ID {
		return fmt.Errorf("adding delivery %s to order %s: it belongs to order %s/%s", d.ID, key, d.Site, d.OrderID)
	}
	if d.State == "" {
		d.State = DeliveryPending
	}
	if !d.State.Valid() {
		return fmt.Errorf("adding delivery %s: unknown state %q", d.ID, d.State)
	}
	if strings.ContainsRune(d.Queue, 0) {
		return fmt.Errorf("adding delivery %s: queue name contains NUL", d.ID)
	}
	return nil
}

// Redacted is the delivery as shown to operators (the admin API): its URL
// without user info, and with the values of its query hidden, since shops
// often put a token in the callback URL. The body is kept: it is what the
// shop receives, and names no secret.
func (d Delivery) Redacted() Delivery {
	d.URL = RedactURL(d.URL)
	return d
}

// RedactURL hides the credentials a URL may carry: its user info and the
// values of its query (the keys stay, to tell URLs apart).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment = ""
	return u.String()
}

// UpdateFunc decides, from the stored order (nil when there is none), what
// to write: the order to store (nil to write nothing) and the deliveries to
// add to the outbox. An error aborts the transaction; nothing is written
// and Update returns that error unchanged.
//
// An UpdateFunc may be called more than once for one Update (group commit
// retries a batch whose other member failed), each time with a freshly read
// order. It must have no effects outside its return values.
type UpdateFunc func(o *order.Order) (*order.Order, []Delivery, error)

// ListFilter narrows List. Zero values match everything.
type ListFilter struct {
	Site   string
	Status order.State
	Limit  int // 0 means 1000
	// After continues a listing: only orders after this one in the
	// listing's order (newest UpdatedAt first; ties by key, as each store
	// orders keys) are listed. Its UpdatedAt and Key are what is read; an
	// order changed since moves, and a page may then miss or repeat it.
	After *order.Order
}

// DeliveryFilter narrows Deliveries. Zero values match everything.
type DeliveryFilter struct {
	State   DeliveryState
	Site    string
	OrderID string
	Limit   int // 0 means 1000
}

// IdempotencyKey is the key of a site's server API call with the shop's
// Idempotency-Key key in the records of BeginIdempotent.
func IdempotencyKey(site, key string) string { return site + "\x00" + key }

// Idempotent is the stored result of a server API call made with an
// Idempotency-Key.
type Idempotent struct {
	Fingerprint string    `json:"fingerprint"` // hash of the request; a different one is a misuse (422)
	Done        bool      `json:"done"`        // false while the first call is in flight (409)
	Status      int       `json:"status,omitempty"`
	Body        []byte    `json:"body,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Abandoned reports whether a call beginning at now may take over this
// record: it is not done and began more than stale ago (its caller died).
// A stale of zero or less never takes over: reading it as "at once" would
// run a call twice while its first run is still in flight.
func (rec Idempotent) Abandoned(now time.Time, stale time.Duration) bool {
	return !rec.Done && stale > 0 && now.Sub(rec.CreatedAt) > stale
}

// Finished is what FinishIdempotent stores: rec, done, with the
// Fingerprint and CreatedAt of the record begun (old, nil when there is
// none) where rec has none. A finished call left looking in flight would
// answer every repeat with 409 and then, once stale, run a second time.
func Finished(rec Idempotent, old *Idempotent) Idempotent {
	rec.Done = true
	if old != nil {
		if rec.Fingerprint == "" {
			rec.Fingerprint = old.Fingerprint
		}
		if rec.CreatedAt.IsZero() {
			rec.CreatedAt = old.CreatedAt
		}
	}
	return rec
}

// Store keeps orders and the callback outbox.
//
// Implementations MUST be safe for concurrent use. Every method that writes
// returns only after the write is durable (fsynced): a caller may tell a
// provider "received" as soon as Update returns nil.
type Store interface {
	// Update applies fn to the order under key in one durable transaction,
	// together with the outbox rows it returns, and returns the order as
	// stored afterwards: the order fn returned when it wrote one (the
	// store keeps no reference to it), else the unchanged stored order, or
	// nil. Updates of one key are serialised. Attempt references of
	// the written order become findable with ByRef in the same transaction.
	Update(ctx context.Context, key order.Key, fn UpdateFunc) (*order.Order, error)
	// Get returns the order under key, or ErrNotFound.
	Get(ctx context.Context, key order.Key) (*order.Order, error)
	// ByRef returns the order that has an attempt with this reference, or
	// ErrNotFound.
	ByRef(ctx context.Context, ref string) (*order.Order, error)
	// ByProviderRef returns the order that has an attempt with this
	// provider reference (a session id, a ticket number, an address), or
	// ErrNotFound. Provider references are the providers' own unique ids;
	// should two orders ever record the same one, the first keeps it.
	ByProviderRef(ctx context.Context, providerRef string) (*order.Order, error)
	// List returns orders, most recently updated first.
	List(ctx context.Context, f ListFilter) ([]*order.Order, error)
	// Open returns up to limit orders of one site in an open state
	// (pending, on_hold) whose Deadline is before the given time, soonest
	// first. It is per site so that one site's stuck orders never take
	// another site's turn.
	Open(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error)
	// Unasked returns up to limit orders of one site whose Unasked time is
	// set and before the given time, longest unasked first: the open
	// orders with an attempt waiting at a provider that no one has asked
	// about since then. Per site, as Open.
	Unasked(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error)
	// Personal returns up to limit orders of one site whose PersonalSince
	// time is set and before the given time, oldest first: the final
	// orders still holding their customer's data, for retain_personal.
	// Per site, as Open.
	Personal(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error)

	// Due returns up to limit pending deliveries whose NextAt is not after
	// now and that are the earliest pending delivery of their order,
	// soonest NextAt first. A store shared by several processes claims
	// what it returns for this process, for a lease that each Due
	// returning it again renews and SaveDelivery ends; another process's
	// live claims are not returned.
	Due(ctx context.Context, now time.Time, limit int) ([]*Delivery, error)
	// NextDue is the earliest NextAt of any pending delivery; ok is false
	// when nothing is pending.
	NextDue(ctx context.Context) (t time.Time, ok bool, err error)
	// SaveDelivery durably replaces a delivery after a try or a manual
	// retry. It returns ErrNotFound for an unknown ID.
	SaveDelivery(ctx context.Context, d *Delivery) error
	// Delivery returns one delivery by its ID, or ErrNotFound.
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// Deliveries lists deliveries, newest first.
	Deliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, error)

	// BeginIdempotent records that a call with this key is starting. When
	// the key is new it stores rec and returns (nil, nil). Otherwise it
	// returns the stored record, unchanged. A record not Done and older
	// than stale is taken over as if new (its caller died).
	BeginIdempotent(ctx context.Context, key string, rec Idempotent, stale time.Duration) (*Idempotent, error)
	// FinishIdempotent stores the result of the call that began key.
	FinishIdempotent(ctx context.Context, key string, rec Idempotent) error
	// ForgetIdempotent removes key, so that a call that failed before it
	// changed anything can be tried again.
	ForgetIdempotent(ctx context.Context, key string) error

	// SpendToken records that the single-use token key has been used,
	// until it would have expired anyway, and reports whether this was its
	// first use: false means it was spent before (by this instance or any
	// other sharing the store, before or after a restart). Tokens whose
	// until has passed by now are forgotten as new ones are spent, a
	// bounded number per call.
	SpendToken(ctx context.Context, key string, until, now time.Time) (bool, error)

	ProviderData

	// Close releases the store.
	Close() error
}

// Leaser is implemented by stores that several processes share (several
// Caddy instances behind one load balancer). Background work that must
// run in one place at a time (expiry, reconciling, a chain watcher) runs
// where the lease is held. A store without it belongs to one process,
// which always leads.
type Leaser interface {
	// Lease takes or renews the named lease for holder until ttl from now,
	// and reports whether holder has it (false: another holder's lease is
	// still running).
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// Release ends holder's lease at once, so another takes over without
	// waiting for it to run out. Releasing a lease not held does nothing.
	Release(ctx context.Context, name, holder string) error
}

// ErrStale is returned by SaveDeliveryIf when the delivery changed since
// it was read: another process tried it meanwhile.
var ErrStale = errors.New("changed since it was read")

// DeliverySwapper is implemented by stores that several processes share.
// SaveDeliveryIf saves d only if the stored delivery is still was (what a
// try started from); otherwise it changes nothing and returns ErrStale. A
// try that outlived its claim, while another process tried the delivery
// again and recorded that, must not overwrite the newer outcome (a
// delivered callback made pending again would be sent after the
// callbacks that followed it).
type DeliverySwapper interface {
	SaveDeliveryIf(ctx context.Context, d, was *Delivery) error
}

// Watcher is implemented by stores that several processes share: Watch
// calls fn for every order an Update of any process changed, with the
// order's site and attempt references, so that customers' live pages on
// every instance follow. fn("", nil) means that changes may have been
// missed (a reconnect): anything may have changed. A store that shares
// its outbox this way also claims what Due returns, for one process at a
// time. Watch returns when ctx is done.
type Watcher interface {
	Watch(ctx context.Context, fn func(site string, refs []string)) error
}

// ProviderData is a small durable key-value space for what a provider
// must remember beyond orders: a chain watcher's checkpoint, the next
// address index of an extended public key, which address belongs to which
// attempt. Keys are namespaced by the caller. Writes are durable when the
// call returns.
type ProviderData interface {
	// GetData returns the value under key, or ErrNotFound.
	GetData(ctx context.Context, key string) ([]byte, error)
	// PutData stores val under key, replacing any value.
	PutData(ctx context.Context, key string, val []byte) error
	// PutDataIfAbsent stores val under key unless a value is there, and
	// returns the value stored afterwards (val, or the one already there).
	PutDataIfAbsent(ctx context.Context, key string, val []byte) ([]byte, error)
	// ScanData calls fn for every key with the prefix, in key order.
	ScanData(ctx context.Context, prefix string, fn func(key string, val []byte) error) error
	// NextSeq returns the next number of the counter under key: 0 the
	// first time, then 1, 2, ... Each number is given out once.
	NextSeq(ctx context.Context, key string) (uint64, error)
}

// Sink receives the whole contents of a store, as `caddy checkout
// copy-store` moves them into another: every order with its deliveries
// (history included, states and sequence numbers kept), the provider
// data, the idempotency records and the spent tokens.
type Sink interface {
	Order(ctx context.Context, o *order.Order, deliveries []Delivery) error
	Data(ctx context.Context, key string, val []byte) error
	Idempotent(ctx context.Context, key string, rec Idempotent) error
	Spent(ctx context.Context, key string, until time.Time) error
}

// exclusivePoll is how often Exclusive asks for a lease another holds.
const exclusivePoll = 200 * time.Millisecond

// Exclusive runs fn while holding the lease name of st, so that no other
// process sharing st runs fn under that name at the same time (a
// Voucher-Safe pickup from one merchant safe). It waits for another
// holder's run to end, until ctx is done. ttl bounds the lease should
// this process die holding it: it must be longer than fn can take. A
// store that is not shared (not a Leaser, or a Leaser that always grants)
// just runs fn.
func Exclusive(ctx context.Context, st any, name string, ttl time.Duration, fn func() error) error {
	l, ok := st.(Leaser)
	if !ok {
		return fn()
	}
	holder, err := randomHolder()
	if err != nil {
		return err
	}
	for {
		got, err := l.Lease(ctx, name, holder, ttl)
		if err != nil {
			return err
		}
		if got {
			break
		}
		t := time.NewTimer(exclusivePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = l.Release(rctx, name, holder) // else it runs out after ttl
	}()
	return fn()
}

func randomHolder() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
