// The JSON objects of the API, named and nested as the spec's schemas:
// Transaction, TransactionView, TicketApprovalResult and TicketProcessResult,
// with the fields the spec returns for a ticket in each status and each
// version.
package cyclostest

import "time"

// dateLayout writes dates as Cyclos does: ISO 8601 with milliseconds and
// offset, which RFC 3339 parsers accept.
const dateLayout = "2006-01-02T15:04:05.000Z07:00"

// entityRef is EntityReference (and the InternalNamedEntity it extends).
type entityRef struct {
	ID           string `json:"id"`
	InternalName string `json:"internalName,omitempty"`
	Name         string `json:"name"`
}

// userRef is User.
type userRef struct {
	ID      string `json:"id"`
	Display string `json:"display"`
}

// accountRef is AccountWithOwner, a user's account.
type accountRef struct {
	ID     string    `json:"id"`
	Number string    `json:"number"`
	Type   entityRef `json:"type"`
	Kind   string    `json:"kind"`
	User   userRef   `json:"user"`
}

// currencyRef is Currency.
type currencyRef struct {
	ID            string `json:"id"`
	InternalName  string `json:"internalName"`
	Name          string `json:"name"`
	Symbol        string `json:"symbol"`
	DecimalDigits int    `json:"decimalDigits"`
}

// transactionJSON is Transaction (with Trans): a ticket, or the payment a
// ticket generated.
type transactionJSON struct {
	ID                string       `json:"id"`
	TransactionNumber string       `json:"transactionNumber,omitempty"`
	Date              string       `json:"date"`
	Amount            string       `json:"amount"`
	From              *accountRef  `json:"from,omitempty"`
	To                *accountRef  `json:"to,omitempty"`
	Type              *entityRef   `json:"type,omitempty"`
	Currency          *currencyRef `json:"currency,omitempty"`
	TicketNumber      string       `json:"ticketNumber,omitempty"`
	Description       string       `json:"description,omitempty"`
	Kind              string       `json:"kind"`
	CreationType      string       `json:"creationType,omitempty"`
}

// customFieldValue is CustomFieldValue for the fake's string fields.
type customFieldValue struct {
	Field       customFieldRef `json:"field"`
	StringValue string         `json:"stringValue"`
}

// customFieldRef is CustomField.
type customFieldRef struct {
	ID           string `json:"id"`
	InternalName string `json:"internalName"`
	Name         string `json:"name"`
	Type         string `json:"type"`
}

// transactionView is TransactionView for a ticket. It has no orderId and
// no successWebhook: the spec's schema returns neither.
type transactionView struct {
	transactionJSON
	CustomValues   []customFieldValue `json:"customValues,omitempty"`
	ExpirationDate string             `json:"expirationDate,omitempty"`
	ProcessDate    string             `json:"processDate,omitempty"`
	Transaction    *transactionJSON   `json:"transaction,omitempty"`
	Payee          *userRef           `json:"payee,omitempty"`
	PayerPrincipal string             `json:"payerPrincipal,omitempty"`
	Payer          *userRef           `json:"payer,omitempty"`
	ApproveURL     string             `json:"approveUrl,omitempty"`
	CancelURL      string             `json:"cancelUrl,omitempty"`
	SuccessURL     string             `json:"successUrl,omitempty"`
	TicketStatus   string             `json:"ticketStatus"`
}

// approvalResult is TicketApprovalResult.
type approvalResult struct {
	ID           string           `json:"id"`
	TicketNumber string           `json:"ticketNumber"`
	CancelURL    string           `json:"cancelUrl,omitempty"`
	SuccessURL   string           `json:"successUrl,omitempty"`
	Transaction  *transactionJSON `json:"transaction,omitempty"`
	TicketStatus string           `json:"ticketStatus"`
}

// processResult is TicketProcessResult.
type processResult struct {
	ID                string           `json:"id"`
	TicketNumber      string           `json:"ticketNumber"`
	ActuallyProcessed bool             `json:"actuallyProcessed"`
	Transaction       *transactionJSON `json:"transaction"`
}

var (
	memberAccountType = entityRef{ID: "5001", InternalName: "member", Name: "Member account"}
	webshopType       = entityRef{ID: paymentTypeID, InternalName: "webshop", Name: "Webshop payment"}
	currency          = currencyRef{ID: "3001", InternalName: currencyInternal, Name: currencyName, Symbol: currencySymbol, DecimalDigits: currencyDecimals}
)

func formatDate(t time.Time) string { return t.Format(dateLayout) }

func (u *user) ref() *userRef { return &userRef{ID: u.id, Display: u.name} }

func (u *user) account() *accountRef {
	return &accountRef{ID: u.accountID, Number: u.accountNumber, Type: memberAccountType, Kind: "user", User: *u.ref()}
}

// transaction is the ticket as a Transaction: what a 4.12 server answers on
// creation, and the base of its TransactionView. The payer's account is
// known only once someone approved the ticket.
func (s *Server) transaction(t *ticket) transactionJSON {
	typ, cur := webshopType, currency
	tx := transactionJSON{
		ID:           t.id,
		Date:         formatDate(t.created),
		Amount:       formatCents(t.amount),
		To:           t.owner.account(),
		Type:         &typ,
		Currency:     &cur,
		TicketNumber: t.number,
		Description:  t.description,
		Kind:         "ticket",
	}
	if t.approvedBy != nil {
		tx.From = t.approvedBy.account()
	}
	return tx
}

// view is the ticket's TransactionView, as GET /tickets/{ticket} and, on
// 4.13 and later, ticket creation answer. Fields the spec returns only for
// an open ticket (approveUrl, payee, payer, payerPrincipal) disappear with
// the status; 4.12's schema has no approveUrl, payee or payer at all.
func (s *Server) view(t *ticket) transactionView {
	v := transactionView{
		transactionJSON: s.transaction(t),
		ExpirationDate:  formatDate(t.expires),
		CancelURL:       t.cancelURL,
		SuccessURL:      t.successURL,
		TicketStatus:    t.status,
	}
	for _, k := range sortedKeys(t.customValues) {
		v.CustomValues = append(v.CustomValues, customFieldValue{
			Field:       customFieldRef{ID: "cf-" + k, InternalName: k, Name: k, Type: "string"},
			StringValue: t.customValues[k],
		})
	}
	if t.status == StatusOpen {
		if t.payer != nil {
			v.PayerPrincipal = t.payer.login
		}
		if s.version != "4.12" {
			v.Payee = t.owner.ref()
			if t.payer != nil {
				v.Payer = t.payer.ref()
			}
			v.ApproveURL = s.approveURL(t.number)
		}
	}
	if t.payment != nil {
		v.ProcessDate = formatDate(t.processed)
		v.Transaction = paymentJSON(t.payment)
	}
	return v
}

// approveURL is where a 4.16 server sends the payer. It is deliberately not
// the classic /pay/{ticket}, so a test passes only if the client follows
// approveUrl rather than building the address.
func (s *Server) approveURL(number string) string {
	return s.URL + "/ui/pay/" + number
}

func paymentJSON(p *payment) *transactionJSON {
	typ, cur := webshopType, currency
	return &transactionJSON{
		ID:                p.id,
		TransactionNumber: p.number,
		Date:              formatDate(p.date),
		Amount:            formatCents(p.amount),
		From:              p.from.account(),
		To:                p.to.account(),
		Type:              &typ,
		Currency:          &cur,
		Description:       p.description,
		Kind:              "payment",
		CreationType:      "ticket",
	}
}

func (s *Server) approvalResult(t *ticket) approvalResult {
	r := approvalResult{
		ID:           t.id,
		TicketNumber: t.number,
		CancelURL:    t.cancelURL,
		SuccessURL:   t.successURL,
		TicketStatus: t.status,
	}
	if t.payment != nil {
		r.Transaction = paymentJSON(t.payment)
	}
	return r
}

func (s *Server) processResult(t *ticket, actually bool) processResult {
	return processResult{ID: t.id, TicketNumber: t.number, ActuallyProcessed: actually, Transaction: paymentJSON(t.payment)}
}
