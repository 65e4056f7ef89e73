// Package provider is the contract between the checkout core and a payment
// system. One interface fits the four shapes of the seed systems:
//
//   - redirect + signed webhook (Stripe, KOMOJU, sandbox): Start returns a
//     Redirect; Webhook verifies the signature and reports Findings; Return
//     re-checks on the customer's way back.
//   - redirect + unsigned callback + server-side process call (Cyclos
//     tickets): Start returns a Redirect; Webhook and Return treat the
//     callback as a hint and report only what the provider's API confirms.
//   - on-page address watched on a chain (ERC-20): Start returns a Page;
//     a Runner watches and reports Findings through Env.Report.
//   - on-page form with manual pickup (Voucher-Safe): Start returns a Page
//     whose form posts to the provider's own Routes; it reports Findings
//     through Env.Report once the pickup is confirmed.
//
// A provider never writes the store: it reports verified Findings and the
// core applies them (forward-only, deduplicated, amount-checked).
package provider

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/templates"
)

// Payment is what a provider is told about the attempt it is asked to take.
type Payment struct {
	Site       string
	OrderID    string
	Ref        string // our unguessable attempt reference; echo it to the provider as the reference
	Generation int
	// CreatedAt is when the attempt was made: a time that stays the same
	// for every Start of it (a provider deriving a session's lifetime from
	// it sends the same request on a double click).
	CreatedAt   time.Time
	Amount      money.Amount
	Description string
	Email       string
	ExpiresAt   time.Time
	ProviderRef string // the provider's id for this attempt, once Start returned one
	// ProviderData is what the provider recorded for the attempt
	// (Finding.Data); do not modify it.
	ProviderData map[string]string
	Transaction  string       // the provider's reference of the payment, once paid (for refunds)
	Received     money.Amount // what has arrived for the attempt so far (on-chain partial payments)
	Locale       string       // "en", "ja"

	// Our URLs for this attempt, absolute.
	ReturnURL  string // GET {base}/return/{provider}/{ref}
	CancelURL  string // where a customer who gives up goes (our pay page)
	WebhookURL string // POST {base}/webhook/{provider}
}

// Start is how the customer goes on: exactly one of Redirect or Page.
type Start struct {
	Redirect string // absolute URL to send the customer to (303)
	// Page is shown inside our pay page, for providers paid on the page
	// (an address and QR code, a form). It must be safe HTML (built with
	// html/template) and use no scripts or third-party assets.
	Page template.HTML
	// ProviderRef is the provider's id for this attempt (a session id, a
	// ticket number, an address), stored on the attempt for later checks.
	ProviderRef string
}

// Finding is something a provider verified about an attempt: a webhook
// whose signature checked out, an object fetched from its API, a chain
// event. Status is the state the provider says the attempt is in; an empty
// Status means "nothing to report yet" (still open at the provider).
// Status failed means the attempt failed (declined, refused): the order
// stays payable and the customer may try again; it does not end the order.
type Finding struct {
	// Ref is our attempt reference. It may be empty when ProviderRef is
	// set and was recorded for the attempt before (Start's ProviderRef, or
	// an earlier Finding): the attempt is then found by it.
	Ref string
	// ProviderRef is the provider's id of the attempt. With Ref set, it
	// is recorded for the attempt when the attempt has none yet.
	ProviderRef string
	// Data is recorded on the attempt (merged, key by key), with or
	// without a state change: what the provider must remember about it
	// (a konbini slip's number) or show the operator.
	Data        map[string]string
	EventID     string       // provider's event id; the same id is applied once
	Status      order.State  // paid, on_hold, failed, cancelled, expired, refunded, or ""
	Paid        money.Amount // for paid/on_hold: the amount the provider says it took
	Transaction string       // provider's transaction reference, given to the shop
	AcceptOver  bool         // an amount above the order's counts as paid (flagged)
	// HoldUntil, with Status on_hold, is how long the provider holds the
	// payment open (a konbini slip's payment deadline, days away): the
	// order is not expired before it. Zero: the order's own expiry.
	HoldUntil time.Time
	// Refunded, with Status refunded, is the total the provider has
	// returned of the payment so far (a partial refund leaves the order
	// paid). Zero: all of it.
	Refunded money.Amount
	// Dispute, when set, is news of a dispute of the attempt's payment (a
	// chargeback): Status is then empty, and the order stays paid unless
	// the dispute is lost.
	Dispute *order.DisputeNews
	// Asked, on an operator's refund, is the amount asked; the site sets it.
	Asked money.Amount
	Note  string // for the order history and the operator
	// From is the provider the finding came from. The site sets it (a
	// provider need not): a finding applies only to an attempt started at
	// that provider, so that one provider's webhook, return or page can
	// never settle another's payment.
	From string
}

// Errors a Webhook or Return may return; the core maps them to HTTP.
var (
	// ErrUnauthenticated: missing or bad signature (401, nothing changes).
	ErrUnauthenticated = errors.New("webhook signature missing or invalid")
	// ErrMalformed: the request cannot be read (400, nothing changes).
	ErrMalformed = errors.New("malformed provider request")
	// ErrUnavailable: the provider could not be asked now (503; the
	// provider or reconciler retries).
	ErrUnavailable = errors.New("payment provider unavailable")
	// ErrNotRefundable: Refund cannot refund this payment here (the
	// order is not paid, or the provider has no refund through its API);
	// the admin API answers 409 with the reason, and nothing changes.
	ErrNotRefundable = errors.New("order cannot be refunded here")
)

// UserError is an error whose message is meant for the customer, such as
// "your account's daily limit is reached": the pay pages show
// UserMessage in the page's locale ("en", "ja"; English for others)
// instead of a generic text. Error stays for the operator's log.
type UserError interface {
	error
	UserMessage(locale string) string
}

// Labeler is a provider that names itself to customers: Label is its
// button on the pay page in locale ("en", "ja"; English for any other).
// A provider without it is shown by its Name.
type Labeler interface {
	Label(locale string) string
}

// Currencies is a provider that takes payments in some currencies only (a
// token watcher takes its token). Accepts reports whether it can take a
// payment in currency (an ISO 4217 code or a token symbol). The pay page
// offers a provider, and chooses it without asking, only for orders it
// accepts; a provider without it is offered for every order.
type Currencies interface {
	Accepts(currency string) bool
}

// Provider is a payment system configured for one site. Implementations
// MUST be safe for concurrent use. Start MUST be idempotent for one
// Payment.Ref: a customer who clicks twice gets the same provider-side
// attempt (send an idempotency key derived from the Ref where the provider
// supports one).
type Provider interface {
	// Name is the provider's name in routes and config: "stripe", "sandbox".
	Name() string
	// Start prepares the provider to take the payment and says how the
	// customer continues.
	Start(ctx context.Context, p Payment) (Start, error)
}

// Webhooker is a provider that receives server-to-server notifications at
// {base}/webhook/{name}. Webhook is given the raw body (size-capped) and
// must verify it before reporting anything: a signature, or a re-fetch
// from the provider's API for unsigned notifications. It returns
// ErrUnauthenticated or ErrMalformed for requests it rejects, and may
// return no findings for events it ignores (answered 200).
type Webhooker interface {
	Webhook(ctx context.Context, r *http.Request, body []byte) ([]Finding, error)
}

// Returner is a provider that re-checks the customer's return at
// {base}/return/{name}/{ref} server-side. The query of r is untrusted.
type Returner interface {
	Return(ctx context.Context, r *http.Request, p Payment) (Finding, error)
}

// Checker is a provider that can be asked about an attempt's state, for the
// reconciler that heals lost webhooks.
type Checker interface {
	Check(ctx context.Context, p Payment) (Finding, error)
}

// Refunder is a provider that can return a paid attempt's payment, all
// of it or part. Refund returns r.Amount of the payment p and reports the
// total returned so far (Finding.Refunded, Status refunded). The same
// r.Key must return the money once however often it is asked (send it as
// the provider's idempotency key). A provider that cannot return this
// payment, or part of it, answers ErrNotRefundable with the reason.
type Refunder interface {
	Refund(ctx context.Context, p Payment, r Refund) (Finding, error)
}

// Refund is what an operator asked to return.
type Refund struct {
	Amount money.Amount // how much to return now, at most what is left
	Before money.Amount // what the provider had refunded of it before this refund
	Key    string       // idempotency key: the same key returns the money once
	// Partial is set when Amount is less than what is left.
	Partial bool
}

// Personal is a provider that keeps customer data in the attempts'
// ProviderData (a Jabber ID, a konbini slip's confirmation code): Personal
// reports whether key holds such data, and what it is replaced with when
// retain_personal erases it once the order has been final for that long
// ("": the key is removed). Keys it does not name are kept: payment ids
// and what refunds and checks need.
type Personal interface {
	Personal(key string) (erased string, ok bool)
}

// Closer is a provider that can stop an attempt from taking money once it
// can no longer pay the order: the order expired or was cancelled here, or
// the shop changed the amount and a new attempt replaced it. Close is best
// effort (a payment already under way may still arrive, and is then
// recorded as late or superseded); it must be idempotent and must not fail
// for an attempt the provider never started or has already closed.
type Closer interface {
	Close(ctx context.Context, p Payment) error
}

// Instructor is a provider whose payments can be held open while the
// customer pays elsewhere (a konbini slip paid in cash at a store, days
// later). Instructions is what the customer's page shows about an attempt
// on hold, in locale: where and how to pay, by when. It is built from
// what the provider recorded (Payment.ProviderData) and makes no calls;
// empty when there is nothing to show. The HTML must be safe (built with
// html/template), with no scripts or third-party assets.
type Instructor interface {
	Instructions(p Payment, locale string) template.HTML
}

// Origins is a provider whose pages send customers back to our return
// route. PageOrigins are the origins of those pages ("https://komoju.com"),
// against which the return's Referer is checked, and to which the pay
// page's form may redirect (CSP form-action).
type Origins interface {
	PageOrigins() []string
}

// Progresser is a provider that can say more about an open attempt than
// its state, for the customer's live page ("seen, 3 of 12 confirmations").
type Progresser interface {
	Progress(ref string) Progress
}

// Progress is a provider's word on an open attempt.
type Progress struct {
	Text   string    // for the customer
	SeenAt time.Time // when a payment was first seen, not yet confirmed; zero if none
}

// Router is a provider with its own customer-facing routes under
// {base}/{name}/ (the sandbox's hosted page, a QR image, a form target).
// The path given to ServeHTTP has {base}/{name} stripped.
type Router interface {
	http.Handler
}

// BaseRouter is a provider that also answers some paths directly under
// {base}/, where other software already expects them (0xBTCpay's POST
// {base}/ and GET {base}/{id}/status.json): paths the core's own routes
// leave free. ServeBase is given the path below {base} ("/",
// "/0123456789abcdef/status.json"); it answers r and returns true when the
// path is one of its routes, and returns false, having written nothing,
// for any other.
type BaseRouter interface {
	ServeBase(w http.ResponseWriter, r *http.Request, path string) bool
}

// Announcer is a provider that sends messages of its own when an order it
// took moves, besides the shop's callback (0xBTCpay's postback). Announce
// is called inside the transaction of each state change of an order whose
// moving attempt is this provider's, with the order as it will be stored
// and the change's event; the Messages it returns are written in that
// same transaction, so they are never lost nor sent for a change that did
// not happen, and are then signed with the site secret and retried like
// the shop's callbacks (Standard Webhooks), each Queue a line of its own
// that never holds up the shop's. Announce MUST be fast and have no
// effects: it may be called more than once for one change.
type Announcer interface {
	Announce(o *order.Order, ev order.Event) []Message
}

// Message is a signed POST a provider announces.
type Message struct {
	// Queue names the message's line, such as "erc20.postback": messages
	// of one order and line go out in order. It must not be empty (that
	// is the shop's line).
	Queue string
	Type  string // its type, given to the receiver in the body by the provider
	URL   string // absolute http(s) URL
	Body  []byte
}

// Runner is a provider with background work (a chain watcher). Run returns
// when ctx is done. Where several instances share a store, a Runner runs
// on one of them at a time (the leader), unless it is an EveryInstance.
type Runner interface {
	Run(ctx context.Context) error
}

// EveryInstance is a Runner whose work each instance must do for itself,
// because its own requests use it (a Voucher-Safe bot's XMPP session, over
// which the instance's customers are sent their orders). It runs on every
// instance sharing the store, not on the leader alone.
type EveryInstance interface {
	Runner
	EveryInstance()
}

// Env is what the core gives a provider when it is set up.
type Env struct {
	Site     string
	BasePath string       // "/_checkout"
	Secret   Secret       // the site secret, for providers that sign their own messages (sandbox)
	Report   ReportFunc   // apply findings found outside a request (watchers, the sandbox)
	Lookup   LookupFunc   // find an attempt by our reference
	Webhook  http.Handler // the site's own webhook entry point (for the sandbox)
	Now      func() time.Time
	Locales  []string
	// Locale is the language a request is answered in ("en", "ja"), for
	// a provider's own pages and messages.
	Locale     func(r *http.Request) string
	Render     RenderFunc // render a provider page inside the site's layout
	CSRFToken  func(ref string) string
	VerifyCSRF func(r *http.Request, ref string) bool
	// Logger is the site's logger, for what a provider finds outside a
	// request (a watcher that cannot reach its node).
	Logger *zap.Logger
	// Data is durable storage of the provider's own records (a chain
	// checkpoint, an address counter), private to the site. Keys should
	// start with the provider's name.
	Data store.ProviderData
	// Currencies are the currencies the site takes: a provider that takes
	// a token registers its symbol and decimals here at Setup. The
	// registry is the site's own, made anew with each config.
	Currencies *money.Currencies
	// SharedData is the same storage without the site's prefix, for what
	// must be unique across the sites of a store (an address handed out
	// from an xpub that two sites might share).
	SharedData store.ProviderData
	// Exclusive runs fn while no other instance sharing the store runs fn
	// under the same name (store.Exclusive): ttl must outlast fn. With a
	// store of its own it just runs fn.
	Exclusive func(ctx context.Context, name string, ttl time.Duration, fn func() error) error

	// For providers that take orders through routes of their own (a
	// compatibility API such as 0xBTCpay's):
	//
	// Intake stores the order as the shop's server API would (idempotent
	// for the same id and amount), fixed to the provider named, and
	// starts the provider for its current attempt (Start is called), so
	// that expiry and the reconciler look after it as after any order.
	Intake func(ctx context.Context, in order.Intake, provider string) (*order.Order, Start, error)
	// Order returns the site's order with the shop's order id, or an
	// error wrapping store.ErrNotFound.
	Order func(ctx context.Context, id string) (*order.Order, error)
	// API says whether the site's server API is on (intake api) and, when
	// it is, whether r comes from an address api_allow admits.
	API func(r *http.Request) (on, allowed bool)
}

// Secret is the part of sign.Secret a provider may use.
type Secret interface {
	SetWebhookHeaders(h http.Header, id string, now time.Time, body []byte)
	VerifyWebhook(h http.Header, body []byte, now time.Time) (string, error)
}

// ReportFunc applies a finding as the core would for a webhook, and
// returns the order as stored afterwards.
type ReportFunc func(ctx context.Context, cause order.CauseKind, f Finding) (*order.Order, error)

// LookupFunc returns the order and the Payment for an attempt reference.
type LookupFunc func(ctx context.Context, ref string) (*order.Order, Payment, error)

// RenderFunc writes a named page of the site's templates.
type RenderFunc func(w http.ResponseWriter, r *http.Request, status int, page string, data templates.Page)

// Setuper is a provider that needs the site's environment. The core calls
// Setup once, after the provider's config is loaded and before any other
// method; an error is a config error and names what is wrong.
type Setuper interface {
	Setup(env Env) error
}
