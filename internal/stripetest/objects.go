// The objects the fake keeps (Checkout Session, PaymentIntent, Charge,
// Refund) and their JSON as Stripe's API version 2023-10-16 renders it, with
// the fields a Checkout integration reads, in Stripe's key order.
package stripetest

import (
	"maps"
	"strings"
	"time"
)

type lineItem struct {
	name       string
	unitAmount int64
	quantity   int64
}

type session struct {
	id, account        string
	created, expiresAt int64
	status             string // open | complete | expired
	paymentStatus      string // unpaid | paid
	amountTotal        int64
	currency           string
	clientReferenceID  string
	successURL         string
	cancelURL          string
	customerEmail      string
	locale             string
	metadata           map[string]string
	intentMetadata     map[string]string
	methodTypes        []string
	items              []lineItem
	intent             *paymentIntent
	paidEmail          string // customer_details.email, once the customer has paid
}

type paymentIntent struct {
	id, account    string
	created        int64
	amount         int64
	amountReceived int64
	currency       string
	status         string // requires_action (a konbini voucher) | succeeded | requires_payment_method | canceled
	// voucherExpires is when a konbini voucher (status requires_action)
	// lapses: its next_action.konbini_display_details.expires_at.
	voucherExpires int64
	metadata       map[string]string
	methodTypes    []string
	clientSecret   string
	charge         *charge
}

type charge struct {
	id, account    string
	created        int64
	amount         int64
	amountRefunded int64
	currency       string
	metadata       map[string]string
	intent         *paymentIntent
}

type refund struct {
	id, account string
	created     int64
	amount      int64
	currency    string
	reason      string
	metadata    map[string]string
	charge      *charge
}

// Session is a snapshot of a Checkout Session, for assertions.
type Session struct {
	ID                 string
	Account            string // the connected account it belongs to; "" for the platform
	URL                string // the hosted page (kept after completion, unlike the API's url)
	Status             string // open | complete | expired
	PaymentStatus      string // unpaid | paid
	AmountTotal        int64  // in the currency's smallest unit
	Currency           string
	ClientReferenceID  string
	Metadata           map[string]string
	SuccessURL         string
	CancelURL          string
	CustomerEmail      string
	Locale             string
	PaymentMethodTypes []string
	Created            time.Time
	ExpiresAt          time.Time

	// PaymentIntent is the PaymentIntent's id, "" until the customer pays.
	PaymentIntent         string
	PaymentIntentStatus   string
	PaymentIntentMetadata map[string]string
	// AmountRefunded is the total refunded so far.
	AmountRefunded int64
}

func (x *session) snapshot(base string) Session {
	out := Session{
		ID:                 x.id,
		Account:            x.account,
		URL:                base + "/pay/" + x.id,
		Status:             x.status,
		PaymentStatus:      x.paymentStatus,
		AmountTotal:        x.amountTotal,
		Currency:           x.currency,
		ClientReferenceID:  x.clientReferenceID,
		Metadata:           maps.Clone(x.metadata),
		SuccessURL:         x.successURL,
		CancelURL:          x.cancelURL,
		CustomerEmail:      x.customerEmail,
		Locale:             x.locale,
		PaymentMethodTypes: append([]string(nil), x.methodTypes...),
		Created:            time.Unix(x.created, 0),
		ExpiresAt:          time.Unix(x.expiresAt, 0),
	}
	if pi := x.intent; pi != nil {
		out.PaymentIntent = pi.id
		out.PaymentIntentStatus = pi.status
		out.PaymentIntentMetadata = maps.Clone(pi.metadata)
		if pi.charge != nil {
			out.AmountRefunded = pi.charge.amountRefunded
		}
	}
	return out
}

// expansion is the set of dotted paths in a request's expand[] parameter.
type expansion map[string]bool

// under returns the expansions below the property p.
func (e expansion) under(p string) expansion {
	out := expansion{}
	for k := range e {
		if rest, found := strings.CutPrefix(k, p+"."); found {
			out[rest] = true
		}
	}
	return out
}

// expandable lists, per object, the properties that hold another object's id
// and can be expanded into that object.
var expandable = map[string]map[string]string{
	"checkout.session": {"payment_intent": "payment_intent"},
	"payment_intent":   {"latest_charge": "charge"},
	"charge":           {"payment_intent": "payment_intent"},
	"refund":           {"charge": "charge", "payment_intent": "payment_intent"},
}

// parseExpand reads expand[] and refuses a path that cannot be expanded, with
// Stripe's message.
func parseExpand(f form, object string) (expansion, *apiError) {
	exp := expansion{}
	for _, p := range f.strs("expand") {
		obj := object
		for _, prop := range strings.Split(p, ".") {
			next, ok := expandable[obj][prop]
			if !ok {
				return nil, invalidRequest("expand", "This property cannot be expanded ("+prop+").")
			}
			obj = next
		}
		exp[p] = true
	}
	return exp, nil
}

type sessionJSON struct {
	ID                 string               `json:"id"`
	Object             string               `json:"object"`
	AmountSubtotal     int64                `json:"amount_subtotal"`
	AmountTotal        int64                `json:"amount_total"`
	CancelURL          *string              `json:"cancel_url"`
	ClientReferenceID  *string              `json:"client_reference_id"`
	Created            int64                `json:"created"`
	Currency           string               `json:"currency"`
	Customer           *string              `json:"customer"`
	CustomerDetails    *customerDetailsJSON `json:"customer_details"`
	CustomerEmail      *string              `json:"customer_email"`
	ExpiresAt          int64                `json:"expires_at"`
	Livemode           bool                 `json:"livemode"`
	Locale             *string              `json:"locale"`
	Metadata           map[string]string    `json:"metadata"`
	Mode               string               `json:"mode"`
	PaymentIntent      any                  `json:"payment_intent"`
	PaymentMethodTypes []string             `json:"payment_method_types"`
	PaymentStatus      string               `json:"payment_status"`
	Status             string               `json:"status"`
	SuccessURL         string               `json:"success_url"`
	UIMode             string               `json:"ui_mode"`
	URL                *string              `json:"url"`
}

type customerDetailsJSON struct {
	Address   *struct{} `json:"address"`
	Email     string    `json:"email"`
	Name      *string   `json:"name"`
	Phone     *string   `json:"phone"`
	TaxExempt string    `json:"tax_exempt"`
	TaxIDs    []string  `json:"tax_ids"`
}

type paymentIntentJSON struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	AmountCapturable   int64             `json:"amount_capturable"`
	AmountReceived     int64             `json:"amount_received"`
	CanceledAt         *int64            `json:"canceled_at"`
	CaptureMethod      string            `json:"capture_method"`
	ClientSecret       string            `json:"client_secret"`
	ConfirmationMethod string            `json:"confirmation_method"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	Description        *string           `json:"description"`
	LatestCharge       any               `json:"latest_charge"`
	Livemode           bool              `json:"livemode"`
	Metadata           map[string]string `json:"metadata"`
	PaymentMethodTypes []string          `json:"payment_method_types"`
	Status             string            `json:"status"`
	NextAction         *nextActionJSON   `json:"next_action"`
}

// nextActionJSON is a PaymentIntent's next_action while the customer
// must pay a konbini voucher.
type nextActionJSON struct {
	Type                  string `json:"type"` // "konbini_display_details"
	KonbiniDisplayDetails struct {
		ExpiresAt        int64  `json:"expires_at"`
		HostedVoucherURL string `json:"hosted_voucher_url"`
	} `json:"konbini_display_details"`
}

type chargeJSON struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Amount         int64             `json:"amount"`
	AmountCaptured int64             `json:"amount_captured"`
	AmountRefunded int64             `json:"amount_refunded"`
	Captured       bool              `json:"captured"`
	Created        int64             `json:"created"`
	Currency       string            `json:"currency"`
	Livemode       bool              `json:"livemode"`
	Metadata       map[string]string `json:"metadata"`
	Paid           bool              `json:"paid"`
	PaymentIntent  any               `json:"payment_intent"`
	Refunded       bool              `json:"refunded"`
	Status         string            `json:"status"`
}

type refundJSON struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Amount        int64             `json:"amount"`
	Charge        any               `json:"charge"`
	Created       int64             `json:"created"`
	Currency      string            `json:"currency"`
	Metadata      map[string]string `json:"metadata"`
	PaymentIntent any               `json:"payment_intent"`
	Reason        *string           `json:"reason"`
	Status        string            `json:"status"`
}

// nullable renders "" as JSON null, as Stripe renders an unset string.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func metadataJSON(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

func (x *session) json(base string, exp expansion) sessionJSON {
	j := sessionJSON{
		ID:                 x.id,
		Object:             "checkout.session",
		AmountSubtotal:     x.amountTotal,
		AmountTotal:        x.amountTotal,
		CancelURL:          nullable(x.cancelURL),
		ClientReferenceID:  nullable(x.clientReferenceID),
		Created:            x.created,
		Currency:           x.currency,
		CustomerEmail:      nullable(x.customerEmail),
		ExpiresAt:          x.expiresAt,
		Locale:             nullable(x.locale),
		Metadata:           metadataJSON(x.metadata),
		Mode:               "payment",
		PaymentMethodTypes: append([]string(nil), x.methodTypes...),
		PaymentStatus:      x.paymentStatus,
		Status:             x.status,
		SuccessURL:         x.successURL,
		UIMode:             "hosted",
	}
	// Stripe gives the hosted page's URL only while it can still be paid.
	if x.status == "open" {
		u := base + "/pay/" + x.id
		j.URL = &u
	}
	if x.paidEmail != "" {
		j.CustomerDetails = &customerDetailsJSON{Email: x.paidEmail, TaxExempt: "none", TaxIDs: []string{}}
	}
	if x.intent != nil {
		if exp["payment_intent"] {
			j.PaymentIntent = x.intent.json(exp.under("payment_intent"))
		} else {
			j.PaymentIntent = x.intent.id
		}
	}
	return j
}

func (pi *paymentIntent) json(exp expansion) paymentIntentJSON {
	j := paymentIntentJSON{
		ID:                 pi.id,
		Object:             "payment_intent",
		Amount:             pi.amount,
		AmountReceived:     pi.amountReceived,
		CaptureMethod:      "automatic",
		ClientSecret:       pi.clientSecret,
		ConfirmationMethod: "automatic",
		Created:            pi.created,
		Currency:           pi.currency,
		Metadata:           metadataJSON(pi.metadata),
		PaymentMethodTypes: append([]string(nil), pi.methodTypes...),
		Status:             pi.status,
	}
	if pi.status == "requires_action" && pi.voucherExpires != 0 {
		j.NextAction = &nextActionJSON{Type: "konbini_display_details"}
		j.NextAction.KonbiniDisplayDetails.ExpiresAt = pi.voucherExpires
		j.NextAction.KonbiniDisplayDetails.HostedVoucherURL = "https://payments.stripe.com/konbini/voucher/" + pi.id
	}
	if pi.charge != nil {
		if exp["latest_charge"] {
			j.LatestCharge = pi.charge.json(exp.under("latest_charge"))
		} else {
			j.LatestCharge = pi.charge.id
		}
	}
	return j
}

func (ch *charge) json(exp expansion) chargeJSON {
	j := chargeJSON{
		ID:             ch.id,
		Object:         "charge",
		Amount:         ch.amount,
		AmountCaptured: ch.amount,
		AmountRefunded: ch.amountRefunded,
		Captured:       true,
		Created:        ch.created,
		Currency:       ch.currency,
		Metadata:       metadataJSON(ch.metadata),
		Paid:           true,
		PaymentIntent:  ch.intent.id,
		Refunded:       ch.amountRefunded == ch.amount,
		Status:         "succeeded",
	}
	if exp["payment_intent"] {
		j.PaymentIntent = ch.intent.json(exp.under("payment_intent"))
	}
	return j
}

func (re *refund) json(exp expansion) refundJSON {
	j := refundJSON{
		ID:            re.id,
		Object:        "refund",
		Amount:        re.amount,
		Charge:        re.charge.id,
		Created:       re.created,
		Currency:      re.currency,
		Metadata:      metadataJSON(re.metadata),
		PaymentIntent: re.charge.intent.id,
		Reason:        nullable(re.reason),
		Status:        "succeeded",
	}
	if exp["charge"] {
		j.Charge = re.charge.json(exp.under("charge"))
	}
	if exp["payment_intent"] {
		j.PaymentIntent = re.charge.intent.json(exp.under("payment_intent"))
	}
	return j
}
