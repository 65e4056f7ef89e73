// Package cyclos takes payments through Cyclos 4 tickets (Hudson Valley
// Current and any Cyclos network): a ticket per attempt, the customer
// sent to Cyclos to approve it, and the ticket processed by us when Cyclos
// calls back. Cyclos's callbacks are not signed, so they are only hints:
// the order is paid only on what processing the ticket with our own
// credentials answers.
package cyclos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// Name is the provider's name in routes and config.
const Name = "cyclos"

// Cyclos is the Cyclos provider for one site. Its exported fields are its
// configuration (the JSON twin of the Caddyfile's cyclos block).
type Cyclos struct {
	// URL is the Cyclos root, such as https://app.hudsonvalleycurrent.org
	// (with the network's path where there is one); the API is <url>/api.
	URL string `json:"url,omitempty"`

	// AccessClientToken authenticates the shop's user (an access client
	// activated in Cyclos). Use a placeholder such as {env.CYCLOS_TOKEN}.
	// Either this or Username and Password.
	AccessClientToken string `json:"access_client_token,omitempty"`

	// Username and Password authenticate the shop's user with HTTP Basic
	// instead of an access client.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// Channel is sent as the Channel header, for networks that configure
	// a channel for web shops. Optional.
	Channel string `json:"channel,omitempty"`

	// User owns the tickets: "self" (the authenticated user, the default)
	// or a user identifier, for an operator acting for a shop.
	User string `json:"user,omitempty"`

	// PaymentType is the ticket's payment type (an id or
	// accountType.paymentType internal name). Default: the server's.
	PaymentType string `json:"payment_type,omitempty"`

	// CustomValues fill the payment's custom fields, by field internal
	// name, from templates: {order_id}, {ref}, {attempt}, {amount},
	// {currency}, {description}, {email} and {date} (the ticket's creation
	// time, RFC 3339 UTC), as in `custom_value invoice_nr {order_id}`.
	CustomValues map[string]string `json:"custom_values,omitempty"`

	// Payer, when set, is the only user who may pay a ticket: a template
	// as for CustomValues, such as {email} where customers log in to
	// Cyclos with their e-mail address. Default: anyone.
	Payer string `json:"payer,omitempty"`

	token, password string // secrets with placeholders resolved
	env             provider.Env
	client          *client
}

var (
	_ provider.Provider  = (*Cyclos)(nil)
	_ provider.Setuper   = (*Cyclos)(nil)
	_ provider.Webhooker = (*Cyclos)(nil)
	_ provider.Origins   = (*Cyclos)(nil)
	_ provider.Labeler   = (*Cyclos)(nil)
	_ provider.Returner  = (*Cyclos)(nil)
	_ provider.Checker   = (*Cyclos)(nil)
	_ provider.Closer    = (*Cyclos)(nil)
	_ provider.Router    = (*Cyclos)(nil)
)

// Name implements provider.Provider.
func (*Cyclos) Name() string { return Name }

// Label implements provider.Labeler.
func (*Cyclos) Label(locale string) string {
	if locale == "ja" {
		return "Cyclos（地域通貨）"
	}
	return "Cyclos (community currency)"
}

// Setup checks the configuration and makes the API client.
func (c *Cyclos) Setup(env provider.Env) error {
	if c.token == "" {
		c.token = c.AccessClientToken
	}
	if c.password == "" {
		c.password = c.Password
	}
	root, err := url.Parse(c.URL)
	if err != nil || (root.Scheme != "https" && root.Scheme != "http") || root.Host == "" || root.RawQuery != "" || root.Fragment != "" {
		return fmt.Errorf("url %q: want the Cyclos root, such as https://app.hudsonvalleycurrent.org", c.URL)
	}
	switch {
	case c.token != "" && (c.Username != "" || c.password != ""):
		return errors.New("use access_client_token or username and password, not both")
	case c.token == "" && (c.Username == "" || c.password == ""):
		return errors.New("access_client_token (or username and password) is required")
	}
	if c.User == "" {
		c.User = "self"
	}
	if strings.ContainsAny(c.User, "/?#") {
		return fmt.Errorf("user %q: want self or a user identifier", c.User)
	}
	for field, tmpl := range c.CustomValues {
		if field == "" {
			return errors.New("custom_value: empty field name")
		}
		if err := checkTemplate(tmpl); err != nil {
			return fmt.Errorf("custom_value %s: %v", field, err)
		}
	}
	if err := checkTemplate(c.Payer); err != nil {
		return fmt.Errorf("payer: %v", err)
	}
	if env.Now == nil || env.Lookup == nil || env.Report == nil || env.Render == nil {
		return errors.New("incomplete site environment")
	}
	c.env = env
	c.client = &client{
		api:      strings.TrimSuffix(root.String(), "/") + "/api",
		token:    c.token,
		username: c.Username,
		password: c.password,
		channel:  c.Channel,
		http:     &http.Client{Timeout: 30 * time.Second},
	}
	return nil
}

// templateFields are what custom values and the payer may hold.
var templateFields = []string{"order_id", "ref", "attempt", "amount", "currency", "description", "email", "date"}

func checkTemplate(t string) error {
	rest := t
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("%q has an unclosed {", t)
		}
		name := rest[i+1 : i+j]
		known := false
		for _, f := range templateFields {
			known = known || f == name
		}
		if !known {
			return fmt.Errorf("%q: unknown field {%s} (want one of {%s})", t, name, strings.Join(templateFields, "}, {"))
		}
		rest = rest[i+j+1:]
	}
}

func fill(t string, p provider.Payment, now time.Time) string {
	if t == "" {
		return ""
	}
	return strings.NewReplacer(
		"{order_id}", p.OrderID,
		"{ref}", p.Ref,
		"{attempt}", fmt.Sprint(p.Generation),
		"{amount}", p.Amount.String(),
		"{currency}", p.Amount.Currency(),
		"{description}", p.Description,
		"{email}", p.Email,
		"{date}", now.UTC().Format(time.RFC3339),
	).Replace(t)
}

// Start creates a ticket for the attempt and sends the customer to Cyclos
// to approve it. A ticket already made for the attempt and still open is
// reused, so a double click or a customer coming back makes no second
// ticket; one that ended (expired, cancelled by an administrator) is
// replaced.
func (c *Cyclos) Start(ctx context.Context, p provider.Payment) (provider.Start, error) {
	if p.ProviderRef != "" {
		t, err := c.client.view(ctx, p.ProviderRef)
		if err != nil && !isNotFound(err) {
			return provider.Start{}, err
		}
		if err == nil { // the ticket we made for this attempt
			switch t.TicketStatus {
			case statusOpen:
				return provider.Start{Redirect: c.approveURL(t), ProviderRef: t.TicketNumber}, nil
			case statusApproved, statusProcessed:
				// Approved already: the return route processes it.
				return provider.Start{Redirect: p.ReturnURL + "?" + callbackQuery(p.Ref, t.TicketNumber), ProviderRef: t.TicketNumber}, nil
			}
		}
	}
	now := c.env.Now()
	in := ticketNew{
		Amount:         p.Amount.String(),
		Description:    description(p),
		Type:           c.PaymentType,
		Payer:          fill(c.Payer, p, now),
		OrderID:        p.Ref,
		SuccessURL:     p.ReturnURL,
		SuccessWebhook: p.WebhookURL,
		CancelURL:      c.cancelURL(p),
	}
	if len(c.CustomValues) > 0 {
		in.CustomValues = map[string]string{}
		for field, tmpl := range c.CustomValues {
			in.CustomValues[field] = fill(tmpl, p, now)
		}
	}
	if life := p.ExpiresAt.Sub(now); life > 0 {
		in.ExpiresAfter = &timeInterval{Amount: int64((life + time.Second - 1) / time.Second), Field: "seconds"}
	} else {
		return provider.Start{}, errors.New("the order has expired")
	}
	t, err := c.client.create(ctx, c.User, in)
	if err != nil {
		return provider.Start{}, err
	}
	if t.TicketNumber == "" {
		return provider.Start{}, fmt.Errorf("%w: Cyclos created a ticket without a ticket number", provider.ErrUnavailable)
	}
	return provider.Start{Redirect: c.approveURL(t), ProviderRef: t.TicketNumber}, nil
}

func description(p provider.Payment) string {
	if p.Description == "" {
		return "Order " + p.OrderID
	}
	return "Order " + p.OrderID + ": " + p.Description
}

// PageOrigins implements provider.Origins: customers approve tickets on
// the Cyclos server's own pages.
func (c *Cyclos) PageOrigins() []string {
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return nil
	}
	return []string{u.Scheme + "://" + u.Host}
}

// approveURL is where the customer approves a ticket: the server's
// approveUrl (4.16), else the classic <root>/pay/<ticketNumber>.
func (c *Cyclos) approveURL(t *ticketView) string {
	if t.ApproveURL != "" {
		return t.ApproveURL
	}
	return strings.TrimSuffix(c.URL, "/") + "/pay/" + url.PathEscape(t.TicketNumber)
}

// cancelURL is our route for a customer who cancels at Cyclos.
func (c *Cyclos) cancelURL(p provider.Payment) string {
	base, _ := strings.CutSuffix(p.WebhookURL, "/webhook/"+Name)
	return base + "/" + Name + "/cancel/" + p.Ref
}

func callbackQuery(ref, ticket string) string {
	return url.Values{"orderId": {ref}, "ticketNumber": {ticket}}.Encode()
}

// settle processes an approved ticket of the attempt and reports what
// Cyclos answers: a transaction means paid (whether this call or an
// earlier one actually processed it); a ticket still open, unknown, or
// made for another order changes nothing.
func (c *Cyclos) settle(ctx context.Context, p provider.Payment, ticket string) (provider.Finding, error) {
	res, err := c.client.process(ctx, ticket, p.Ref)
	if err != nil {
		return provider.Finding{}, err
	}
	if res.Transaction == nil || res.Transaction.TransactionNumber == "" && res.Transaction.ID == "" {
		return provider.Finding{}, fmt.Errorf("%w: Cyclos processed ticket %s without a transaction", provider.ErrUnavailable, ticket)
	}
	paid, err := parseAmount(res.Transaction.Amount, p.Amount.Currency())
	if err != nil {
		return provider.Finding{}, fmt.Errorf("%w: transaction amount: %v", provider.ErrMalformed, err)
	}
	txn := res.Transaction.TransactionNumber
	if txn == "" {
		txn = res.Transaction.ID
	}
	return provider.Finding{
		Ref:         p.Ref,
		ProviderRef: ticket,
		EventID:     "ticket-processed:" + ticket,
		Status:      order.Paid,
		Paid:        paid,
		Transaction: txn,
		Note:        fmt.Sprintf("ticket processed (actuallyProcessed %v)", res.ActuallyProcessed),
	}, nil
}

// parseAmount reads a Cyclos decimal amount in the order's currency.
// Cyclos may write more decimals than the currency has ("75.000000");
// only zeros may be dropped.
func parseAmount(s, currency string) (money.Amount, error) {
	exp, ok := money.Exponent(currency)
	if !ok {
		return money.Amount{}, fmt.Errorf("unknown currency %s", currency)
	}
	if whole, frac, found := strings.Cut(s, "."); found {
		for len(frac) > exp && strings.HasSuffix(frac, "0") {
			frac = frac[:len(frac)-1]
		}
		s = whole
		if frac != "" {
			s += "." + frac
		}
	}
	return money.Parse(s, currency)
}
