// The ticket state machine: creation with Cyclos's validation, approval by
// the payer, processing and cancellation by the receiver, and lazy expiry.
// Every function here runs with s.mu held, so a ticket changes status, and
// money moves, in one step.
package cyclostest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"
)

type user struct {
	id, login, name, password string
	cents                     int64
	accountID, accountNumber  string
}

type ticket struct {
	id, number     string
	owner          *user // the receiver: who created the ticket
	amount         int64
	description    string
	typ            string
	customValues   map[string]string
	payer          *user // the fixed payer of TicketNew.payer, if any
	cancelURL      string
	successURL     string
	successWebhook string
	orderID        string
	created        time.Time
	expires        time.Time
	status         string
	approvedBy     *user
	processed      time.Time
	payment        *payment
	processCount   int
}

// payment is the direct payment a ticket generates once, when processed.
type payment struct {
	id, number  string
	date        time.Time
	amount      int64
	from, to    *user
	description string
}

// ticketNew is the spec's TicketNew (PerformBaseTransaction plus the ticket
// fields). Properties the spec does not define are ignored.
type ticketNew struct {
	Amount         json.RawMessage   `json:"amount"`
	Description    string            `json:"description"`
	Currency       string            `json:"currency"`
	Type           string            `json:"type"`
	CustomValues   map[string]string `json:"customValues"`
	Payer          string            `json:"payer"`
	CancelURL      string            `json:"cancelUrl"`
	SuccessURL     string            `json:"successUrl"`
	SuccessWebhook string            `json:"successWebhook"`
	OrderID        string            `json:"orderId"`
	ExpiresAfter   *timeInterval     `json:"expiresAfter"`
}

// timeInterval is the spec's TimeInterval.
type timeInterval struct {
	Amount *int   `json:"amount"`
	Field  string `json:"field"`
}

// paymentTypeID is the id of [PaymentType]; the spec lets a type be named by
// id or by qualified internal name.
const paymentTypeID = "7001"

// createTicket validates a TicketNew as Cyclos does and opens the ticket
// for owner. Every invalid property is reported in one 422.
func (s *Server) createTicket(owner *user, in ticketNew) (*ticket, *apiError) {
	var ie inputError
	amount := int64(0)
	if len(in.Amount) == 0 || string(in.Amount) == "null" {
		ie.property("amount", "Amount is required")
	} else {
		c, problem := parseAmount(amountText(in.Amount))
		switch {
		case problem != "":
			ie.property("amount", "Amount "+problem)
		case c <= 0:
			ie.property("amount", "Amount must be greater than zero")
		default:
			amount = c
		}
	}
	if in.Type != "" && in.Type != PaymentType && in.Type != paymentTypeID {
		ie.property("type", "Payment type not found: "+in.Type)
	}
	if in.Currency != "" && in.Currency != currencyInternal {
		ie.property("currency", "Currency not found: "+in.Currency)
	}
	for _, k := range sortedKeys(in.CustomValues) {
		if !slices.Contains(s.customFields, k) {
			ie.property("customValues", "The payment type has no custom field "+k)
		}
	}
	var payer *user
	if in.Payer != "" {
		payer = s.lookupUser(in.Payer, owner)
		switch {
		case payer == nil:
			ie.property("payer", "User not found: "+in.Payer)
		case payer == owner:
			ie.property("payer", "The payer cannot be the ticket's receiver")
		}
	}
	for _, f := range []struct{ name, value string }{
		{"cancelUrl", in.CancelURL}, {"successUrl", in.SuccessURL}, {"successWebhook", in.SuccessWebhook},
	} {
		if f.value != "" && !isHTTPURL(f.value) {
			ie.property(f.name, "Not a valid http or https URL")
		}
	}
	now := s.now()
	expires := now.AddDate(0, 0, 1) // "If none is given, it is assumed that the ticket expires in one day."
	if in.ExpiresAfter != nil {
		e, ok := addInterval(now, *in.ExpiresAfter)
		if ok {
			expires = e
		} else {
			ie.property("expiresAfter", "The expiration needs a positive amount and a field among days, hours, millis, minutes, months, seconds, weeks and years")
		}
	}
	if err := ie.err(); err != nil {
		return nil, err
	}

	typ := in.Type
	if typ == "" || typ == paymentTypeID {
		typ = PaymentType
	}
	t := &ticket{
		id:             s.nextID(),
		number:         s.newTicketNumber(),
		owner:          owner,
		amount:         amount,
		description:    in.Description,
		typ:            typ,
		customValues:   maps.Clone(in.CustomValues),
		payer:          payer,
		cancelURL:      in.CancelURL,
		successURL:     in.SuccessURL,
		successWebhook: in.SuccessWebhook,
		orderID:        in.OrderID,
		created:        now,
		expires:        expires,
		status:         StatusOpen,
	}
	s.tickets[t.number] = t
	s.order = append(s.order, t)
	return t, nil
}

// amountText is the amount as written: the spec types it as a string, but a
// JSON number is read as its literal, as a JSON-to-decimal binding would.
// Anything else is "", which is not a number.
func amountText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func (s *Server) newTicketNumber() string {
	for {
		n := randomAlnum(32)
		if s.tickets[n] == nil {
			return n
		}
	}
}

// lookupUser finds a user by login, id or "self" (the caller).
func (s *Server) lookupUser(key string, self *user) *user {
	if key == "self" {
		return self
	}
	if u := s.users[key]; u != nil {
		return u
	}
	return s.usersByID[key]
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// addInterval is t plus a TimeInterval; false for a missing or non-positive
// amount or a field outside TimeFieldEnum.
func addInterval(t time.Time, iv timeInterval) (time.Time, bool) {
	if iv.Amount == nil || *iv.Amount <= 0 {
		return t, false
	}
	n := *iv.Amount
	switch iv.Field {
	case "millis":
		return t.Add(time.Duration(n) * time.Millisecond), true
	case "seconds":
		return t.Add(time.Duration(n) * time.Second), true
	case "minutes":
		return t.Add(time.Duration(n) * time.Minute), true
	case "hours":
		return t.Add(time.Duration(n) * time.Hour), true
	case "days":
		return t.AddDate(0, 0, n), true
	case "weeks":
		return t.AddDate(0, 0, 7*n), true
	case "months":
		return t.AddDate(0, n, 0), true
	case "years":
		return t.AddDate(n, 0, 0), true
	}
	return t, false
}

// find returns the ticket with its status brought up to date.
func (s *Server) find(number string) (*ticket, *apiError) {
	t := s.tickets[number]
	if t == nil {
		return nil, errNotFound("ticket", number)
	}
	s.refresh(t)
	return t, nil
}

// refresh expires an open ticket whose expiration date has passed. Cyclos
// expires tickets in the background; doing it when a ticket is next looked
// at is indistinguishable from outside. Only open tickets expire: "The
// ticket has expired without being approved by a payer or canceled by the
// receiver until the expiration date".
func (s *Server) refresh(t *ticket) {
	if t.status == StatusOpen && !s.now().Before(t.expires) {
		t.status = StatusExpired
	}
}

// approval is the outcome of a successful approval: the API result, and the
// callbacks Cyclos then makes.
type approval struct {
	result   approvalResult
	redirect string // successUrl with the ticket's parameters, or ""
	webhook  string // successWebhook with the ticket's parameters, or ""
}

// approve is the payer approving an open ticket. As the spec's approveTicket
// says, a ticket with a successUrl or successWebhook only becomes approved
// (the shop's process call moves the money), and one with neither is paid
// at once. The payer must be able to pay either way.
func (s *Server) approve(number string, payer *user) (approval, *apiError) {
	t, err := s.find(number)
	if err != nil {
		return approval{}, err
	}
	if t.status != StatusOpen {
		return approval{}, errIllegalAction("The ticket is " + t.status + " and can no longer be approved")
	}
	if payer == t.owner {
		return approval{}, errIllegalAction("A user cannot pay their own ticket")
	}
	if t.payer != nil && t.payer != payer {
		return approval{}, errPermissionDenied("Only the ticket's payer can approve it")
	}
	if payer.cents < t.amount {
		return approval{}, errInsufficientBalance()
	}
	t.approvedBy = payer
	if t.successURL == "" && t.successWebhook == "" {
		s.pay(t)
	} else {
		t.status = StatusApproved
	}
	a := approval{result: s.approvalResult(t)}
	if t.successURL != "" {
		a.redirect = withTicketParams(t.successURL, t)
	}
	if t.successWebhook != "" {
		a.webhook = withTicketParams(t.successWebhook, t)
	}
	return a, nil
}

// process is the receiver processing an approved ticket. The first call
// pays and answers actuallyProcessed true; every later one answers false
// with the same payment, so a webhook and a success redirect processing the
// same ticket make one payment between them.
func (s *Server) process(number string, caller *user, orderID string) (processResult, *apiError) {
	t, err := s.find(number)
	if err != nil {
		return processResult{}, err
	}
	if caller != t.owner {
		return processResult{}, errPermissionDenied("Only the ticket's receiver can process it")
	}
	if orderID != t.orderID {
		return processResult{}, errOrderMismatch()
	}
	switch t.status {
	case StatusProcessed:
		t.processCount++
		return s.processResult(t, false), nil
	case StatusApproved:
	default:
		return processResult{}, errIllegalAction("The ticket is " + t.status + " and cannot be processed")
	}
	if t.approvedBy.cents < t.amount {
		return processResult{}, errInsufficientBalance()
	}
	s.pay(t)
	t.processCount++
	return s.processResult(t, true), nil
}

// cancel is the receiver (or, for by == nil, an administrator) canceling an
// open ticket: "Cancels a ticket by the receiver before being approved by
// the payer".
func (s *Server) cancel(number string, by *user) *apiError {
	t, err := s.find(number)
	if err != nil {
		return err
	}
	if by != nil && by != t.owner {
		return errPermissionDenied("Only the ticket's receiver can cancel it")
	}
	if t.status != StatusOpen {
		return errIllegalAction("The ticket is " + t.status + " and can no longer be canceled")
	}
	t.status = StatusCanceled
	return nil
}

// pay generates the ticket's payment from the approving payer to the
// receiver; the ticket reaches its final status, processed.
func (s *Server) pay(t *ticket) {
	now := s.now()
	from := t.approvedBy
	from.cents -= t.amount
	t.owner.cents += t.amount
	s.payments++
	t.payment = &payment{
		id:          s.nextID(),
		number:      formatTransactionNumber(s.payments),
		date:        now,
		amount:      t.amount,
		from:        from,
		to:          t.owner,
		description: t.description,
	}
	t.status = StatusProcessed
	t.processed = now
}

// formatTransactionNumber is the n-th payment's transaction number, the
// identifier users see in their account history.
func formatTransactionNumber(n int) string {
	return fmt.Sprintf("HVC%08d", n)
}

// withTicketParams appends orderId and ticketNumber to a callback URL,
// keeping its query as written. The spec says of cancelUrl, successUrl and
// successWebhook alike: "If an orderId is given then it will be added as a
// query parameter to this url when redirect as well as the ticket number
// too." The fake adds ticketNumber also when there is no orderId, since
// without it the shop could not tell which ticket to process; the spec's
// wording leaves that case open.
func withTicketParams(raw string, t *ticket) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	extra := "ticketNumber=" + url.QueryEscape(t.number)
	if t.orderID != "" {
		extra = "orderId=" + url.QueryEscape(t.orderID) + "&" + extra
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + extra
	} else {
		u.RawQuery = extra
	}
	return u.String()
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
