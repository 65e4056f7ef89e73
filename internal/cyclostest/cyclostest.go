// Package cyclostest is a stateful fake of a Cyclos 4 server as a webshop
// sees it when it takes payments with tickets (the "webshop ticketing" of
// Hudson Valley Current), written from the Cyclos 4.16 OpenAPI spec and the
// HVC integration guide, so tests of the Cyclos provider run against the same
// paths, JSON and errors as the real service, without a network or an
// account.
//
// The fake models:
//
//   - POST /api/{user}/tickets (4.16 only) and the deprecated POST
//     /api/tickets, GET /api/tickets/{ticket}, and POST
//     /api/tickets/{ticket}/approve, /process and /cancel;
//   - Basic and Access-Client-Token authentication, an optional Channel
//     header, and Cyclos's error JSON with its status codes (see errors.go for
//     each error and the spec section it follows);
//   - the customer's approval page at /pay/{ticket} (and, on 4.16, at the
//     ticket's approveUrl), which redirects to the shop's successUrl and calls
//     its successWebhook, so the redirect and the webhook race as they do in
//     reality;
//   - accounts with balances, so a test sees exactly when money moves.
//
// Anything else under /api answers as Cyclos answers a path it does not
// serve: 404 with a NotFoundError that names no entity.
//
// What the customer and an administrator do outside the shop's API (approve
// with or without the callbacks, cancel from the admin interface) are Go
// methods on [Server], as are snapshots of the state for assertions.
package cyclostest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// The ticket statuses of the spec's TicketStatusEnum.
const (
	StatusOpen      = "open"
	StatusApproved  = "approved"
	StatusProcessed = "processed"
	StatusCanceled  = "canceled"
	StatusExpired   = "expired"
)

// The shop is the receiver of every ticket the fake's tests create; it is
// always present, like the demo user "ticket" on demo.cyclos.org.
const (
	ShopLogin    = "shop"
	ShopPassword = "1234"
)

// PaymentType is the qualified internal name (fromAccountType.paymentType)
// of the only payment type the fake knows: the one a ticket gets when its
// TicketNew names none.
const PaymentType = "member.webshop"

// Server is the fake Cyclos. All its methods are safe for concurrent use.
type Server struct {
	// URL is the Cyclos root: the API is URL+"/api" and the classic approval
	// page is URL+"/pay/{ticketNumber}".
	URL string

	tb            testing.TB
	srv           *httptest.Server
	now           func() time.Time
	version       string
	channel       string
	customFields  []string
	webhookMethod string
	webhookClient *http.Client

	mu         sync.Mutex
	idle       *sync.Cond // signalled when a webhook call ends
	inflight   int        // webhook calls under way
	token      string
	users      map[string]*user // by login
	usersByID  map[string]*user
	shop       *user
	tickets    map[string]*ticket // by ticket number
	order      []*ticket          // creation order, for Tickets
	requests   []Request
	webhooks   []WebhookCall
	failNext   int
	failStatus int
	payments   int
	seq        int64
}

// Option configures a [Server].
type Option func(*Server)

// WithVersion sets the Cyclos version the fake behaves as: "4.16" (the
// default) or "4.12". A 4.12 server has no POST /api/{user}/tickets (it was
// added in 4.13), answers ticket creation with a Transaction instead of a
// TransactionView, and never returns approveUrl, so a client must build the
// /pay/{ticket} address itself.
func WithVersion(v string) Option {
	return func(s *Server) { s.version = v }
}

// WithClock sets the clock that dates tickets and payments and decides
// expiry, so tests of expiry need no sleeps.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithChannel makes the API require the header "Channel: name", as a Cyclos
// whose users may only access the API through that channel (the Sardex
// integration uses "ecommerce"). Without it the header is ignored.
func WithChannel(name string) Option {
	return func(s *Server) { s.channel = name }
}

// WithCustomFields gives the ticket's payment type custom fields with these
// internal names. A ticket's customValues may only use them.
func WithCustomFields(names ...string) Option {
	return func(s *Server) { s.customFields = append([]string(nil), names...) }
}

// WithWebhookMethod sets the method of the successWebhook call: "POST" (the
// default) or "GET". The Cyclos documentation does not say which one Cyclos
// uses, so a shop's endpoint must accept both; the parameters are always in
// the query string.
func WithWebhookMethod(method string) Option {
	return func(s *Server) { s.webhookMethod = method }
}

// Request is one API request the fake received, for assertions about what
// the code under test sent. Only requests under /api are recorded.
type Request struct {
	Method            string
	Path              string
	Query             url.Values
	AccessClientToken bool   // an Access-Client-Token header was sent
	Basic             bool   // an Authorization: Basic header was sent
	Channel           string // the Channel header
	Body              []byte
}

// New starts a fake on a loopback port; it is closed when the test ends,
// after the webhook calls under way have finished.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		tb:            tb,
		now:           time.Now,
		version:       "4.16",
		webhookMethod: http.MethodPost,
		webhookClient: &http.Client{Timeout: 10 * time.Second},
		users:         map[string]*user{},
		usersByID:     map[string]*user{},
		tickets:       map[string]*ticket{},
	}
	s.idle = sync.NewCond(&s.mu)
	for _, o := range opts {
		o(s)
	}
	if s.version != "4.16" && s.version != "4.12" {
		tb.Fatalf("cyclostest: version %q: the fake models 4.16 and 4.12", s.version)
	}
	if s.webhookMethod != http.MethodPost && s.webhookMethod != http.MethodGet {
		tb.Fatalf("cyclostest: webhook method %q: must be POST or GET", s.webhookMethod)
	}
	s.token = randomAlnum(48)
	s.shop = s.addUser(ShopLogin, "Hudson Valley Webshop", ShopPassword, 0)

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/api", s.serveAPI)
	mux.HandleFunc("GET /pay/{ticket}", s.servePage)
	mux.HandleFunc("POST /pay/{ticket}", s.servePagePost)
	if s.version == "4.16" {
		mux.HandleFunc("GET /ui/pay/{ticket}", s.servePage)
		mux.HandleFunc("POST /ui/pay/{ticket}", s.servePagePost)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writePage(w, http.StatusNotFound, pageData{Title: "Page not found", Message: "This page does not exist."})
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	tb.Cleanup(func() {
		s.WaitWebhooks()
		s.srv.Close()
	})
	return s
}

// AccessClientToken is the token of the shop's access client, to send as
// the Access-Client-Token header.
func (s *Server) AccessClientToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// AddUser adds a customer who can approve tickets, with a balance in the
// currency's units ("100", "12.50").
func (s *Server) AddUser(login, password, balance string) {
	s.tb.Helper()
	cents, problem := parseAmount(balance)
	if problem != "" {
		s.tb.Fatalf("cyclostest: AddUser(%q): balance %q: %s", login, balance, problem)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.users[login]; dup || login == "" || login == "self" {
		s.tb.Fatalf("cyclostest: AddUser(%q): the login is taken or reserved", login)
	}
	s.addUser(login, login, password, cents)
}

// Balance is the balance of a user's account ("0.00" for the shop before
// any payment), or "" for an unknown login.
func (s *Server) Balance(login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[login]
	if u == nil {
		return ""
	}
	return formatCents(u.cents)
}

// FailNext makes the next n API requests answer status with Cyclos's
// unexpected-error JSON, as during an outage (a status outside 400-599
// is answered as 500). Such a request changes nothing, and it is still
// listed by [Server.Requests].
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// Requests lists every API request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Query = cloneValues(r.Query)
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

// Payments is how many payments the fake has generated from tickets, for
// asserting that a ticket paid exactly once.
func (s *Server) Payments() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.payments
}

// nextID numbers entities, as Cyclos's internal ids. Callers hold s.mu.
func (s *Server) nextID() string {
	s.seq++
	return fmt.Sprint(8_100_000 + s.seq)
}

// addUser creates a user and its account. Callers hold s.mu, except New.
func (s *Server) addUser(login, name, password string, cents int64) *user {
	u := &user{id: s.nextID(), login: login, name: name, password: password, cents: cents}
	u.accountID = s.nextID()
	u.accountNumber = fmt.Sprintf("HV-%06d", s.seq)
	s.users[login] = u
	s.usersByID[u.id] = u
	return u
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlnum is n random letters and digits: ticket numbers are "a
// 32-length alphanumeric ticket identifier" (spec, Transaction.ticketNumber).
// Bytes from 248 up are drawn again, so every character is equally likely.
func randomAlnum(n int) string {
	out := make([]byte, 0, n)
	b := make([]byte, 1)
	for len(out) < n {
		rand.Read(b)
		if b[0] < 248 {
			out = append(out, alnum[int(b[0])%len(alnum)])
		}
	}
	return string(out)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
