// Server-side checks with KOMOJU: the customer's return, the reconciler's
// question about an attempt, refunds and closing an attempt. None of them
// trusts anything but what KOMOJU's API answers.
package komoju

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// Return fetches the session the customer comes back from (KOMOJU appends
// ?session_id= after a payment and after an abort alike) and reports its
// state. Only the session recorded for the attempt, for its amount and
// currency, is read; a customer who came back without paying goes back to
// the pay page to try again.
func (k *Komoju) Return(ctx context.Context, r *http.Request, p provider.Payment) (provider.Finding, error) {
	id := r.URL.Query().Get("session_id")
	if id == "" {
		id = p.ProviderRef
	}
	if id == "" {
		return provider.Finding{}, nil
	}
	if id != p.ProviderRef {
		return provider.Finding{}, fmt.Errorf("%w: session %s is not the one made for this payment", provider.ErrMalformed, truncate(id, 40))
	}
	s, err := k.api.session(ctx, id)
	if errors.Is(err, errMissing) {
		return provider.Finding{}, fmt.Errorf("%w: no such session at KOMOJU", provider.ErrMalformed)
	}
	if err != nil {
		return provider.Finding{}, err
	}
	if !k.belongs(s, p) {
		return provider.Finding{}, fmt.Errorf("%w: session %s was made for another payment", provider.ErrMalformed, s.ID)
	}
	switch {
	case s.Status == "completed" && s.Payment != nil:
		f, ok, err := k.finding(ctx, s.Payment, s.ID)
		if err != nil || !ok || f.Ref != p.Ref {
			return provider.Finding{}, err
		}
		return f, nil
	case s.Status == "cancelled" || s.Status == "pending":
		return provider.Finding{Ref: p.Ref, Status: order.Failed, Note: "the customer came back from KOMOJU without paying (session " + s.Status + ")"}, nil
	}
	return provider.Finding{}, nil
}

// Check asks KOMOJU about the attempt's session and its payment, for the
// reconciler: a lost webhook still ends right, a konbini capture included.
func (k *Komoju) Check(ctx context.Context, p provider.Payment) (provider.Finding, error) {
	if p.ProviderRef == "" {
		return provider.Finding{}, nil
	}
	s, err := k.api.session(ctx, p.ProviderRef)
	if errors.Is(err, errMissing) {
		// KOMOJU has no such session (made with another key, say): no
		// payment can arrive through it, and the order's expiry goes on.
		return provider.Finding{}, nil
	}
	if err != nil {
		return provider.Finding{}, err
	}
	if !k.belongs(s, p) {
		return provider.Finding{}, fmt.Errorf("session %s is not this attempt's", s.ID)
	}
	if s.Payment == nil || s.Payment.ID == "" {
		return provider.Finding{}, nil // no payment yet: the order's own expiry ends it
	}
	pay, err := k.api.payment(ctx, s.Payment.ID)
	if err != nil {
		return provider.Finding{}, err
	}
	f, ok, err := k.finding(ctx, pay, s.ID)
	if err != nil || !ok || f.Ref != p.Ref {
		return provider.Finding{}, err
	}
	return f, nil
}

// Refund returns r.Amount of the attempt's captured payment under the
// request's idempotency key, so an operator's repeated request refunds
// once, and reports the payment's amount_refunded. KOMOJU cannot refund
// konbini payments through its API (a refund request needs the
// customer's bank account): those are refused with the reason.
func (k *Komoju) Refund(ctx context.Context, p provider.Payment, r provider.Refund) (provider.Finding, error) {
	id := p.Transaction
	if !validID(id) {
		return provider.Finding{}, fmt.Errorf("%w: no KOMOJU payment is recorded for this order", provider.ErrNotRefundable)
	}
	pay, err := k.api.payment(ctx, id)
	if err != nil {
		return provider.Finding{}, err
	}
	if refOf(pay) != p.Ref {
		return provider.Finding{}, fmt.Errorf("%w: KOMOJU payment %s is not this order's", provider.ErrNotRefundable, id)
	}
	switch {
	case pay.PaymentDetails.Type == "konbini":
		return provider.Finding{}, fmt.Errorf("%w: KOMOJU cannot refund konbini payments through its API; make a refund request with the customer's bank account in KOMOJU's dashboard", provider.ErrNotRefundable)
	case pay.Status == "refunded":
		return k.refunded(pay, p)
	case pay.Status != "captured":
		return provider.Finding{}, fmt.Errorf("%w: the KOMOJU payment is %s", provider.ErrNotRefundable, pay.Status)
	}
	units, err := toKomoju(r.Amount)
	if err != nil {
		return provider.Finding{}, fmt.Errorf("%w: %v", provider.ErrNotRefundable, err)
	}
	pay, err = k.api.refund(ctx, id, r.Key, units)
	var ae *apiError
	if errors.As(err, &ae) {
		return provider.Finding{}, fmt.Errorf("%w: %v", provider.ErrNotRefundable, ae)
	}
	if err != nil {
		return provider.Finding{}, err
	}
	return k.refunded(pay, p)
}

// refunded is what a payment's amount_refunded says of the attempt p.
func (k *Komoju) refunded(pay *payment, p provider.Payment) (provider.Finding, error) {
	if pay.AmountRefunded <= 0 {
		return provider.Finding{}, fmt.Errorf("KOMOJU payment %s is %s with nothing refunded", pay.ID, pay.Status)
	}
	total, err := refundedOf(pay)
	if err != nil {
		return provider.Finding{}, err
	}
	return provider.Finding{Ref: p.Ref, Status: order.Refunded, Refunded: total, Transaction: pay.ID,
		Note: "refunded through KOMOJU (payment " + pay.ID + ")"}, nil
}

// refundedOf is a payment's amount_refunded as an exact amount (zero when
// nothing was refunded).
func refundedOf(pay *payment) (money.Amount, error) {
	units := pay.AmountRefunded
	return fromKomoju(&units, pay.Currency)
}

// Close stops the attempt from taking money: an authorized konbini slip is
// cancelled, so the customer cannot pay the old slip, and a session still
// open is cancelled. A payment or session already final is left alone.
func (k *Komoju) Close(ctx context.Context, p provider.Payment) error {
	if p.ProviderRef == "" {
		return nil
	}
	s, err := k.api.session(ctx, p.ProviderRef)
	if errors.Is(err, errMissing) {
		return nil
	}
	if err != nil {
		return err
	}
	if !k.belongs(s, p) {
		return nil
	}
	var ae *apiError
	switch {
	case s.Payment != nil && (s.Payment.Status == "authorized" || s.Payment.Status == "pending"):
		_, err = k.api.cancelPayment(ctx, s.Payment.ID, "checkout-cancel-"+s.Payment.ID)
	case s.Status == "pending":
		_, err = k.api.cancelSession(ctx, s.ID, "checkout-cancel-"+s.ID)
	}
	if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
		return nil // became final meanwhile
	}
	return err
}

var instructionsTemplate = template.Must(template.New("komoju").Parse(`<div class="slip">
<dl>
{{- with .Store}}<dt>{{$.L.Store}}</dt><dd>{{.}}</dd>{{end}}
{{- with .Code}}<dt>{{$.L.Code}}</dt><dd><strong class="code">{{.}}</strong></dd>{{end}}
{{- with .Receipt}}<dt>{{$.L.Receipt}}</dt><dd><strong class="code">{{.}}</strong></dd>{{end}}
{{- with .Deadline}}<dt>{{$.L.Deadline}}</dt><dd><time datetime="{{.}}">{{$.DeadlineText}}</time></dd>{{end}}
</dl>
{{- with .URL}}<p><a href="{{.}}" rel="noopener noreferrer">{{$.L.How}}</a></p>{{end}}
</div>`))

type slipLabels struct{ Store, Code, Receipt, Deadline, How string }

var slipText = map[string]slipLabels{
	"en": {"Store", "Confirmation code", "Receipt number", "Pay by", "How to pay at the store"},
	"ja": {"お支払い先", "確認番号", "受付番号", "お支払い期限", "お支払い方法"},
}

var storeNames = map[string][2]string{
	"seven-eleven": {"7-Eleven", "セブン-イレブン"}, "lawson": {"Lawson", "ローソン"},
	"family-mart": {"FamilyMart", "ファミリーマート"}, "ministop": {"Ministop", "ミニストップ"},
	"daily-yamazaki": {"Daily Yamazaki", "デイリーヤマザキ"}, "seicomart": {"Seicomart", "セイコーマート"},
}

// Instructions implements provider.Instructor: a konbini slip's store,
// confirmation code and receipt number, deadline, and KOMOJU's page of
// instructions, from what the attempt recorded.
func (k *Komoju) Instructions(p provider.Payment, locale string) template.HTML {
	d := p.ProviderData
	if d[dataType] == "" || d[dataConfirmation] == "" && d[dataReceipt] == "" && d[dataInstructions] == "" {
		return ""
	}
	l, ok := slipText[locale]
	if !ok {
		l = slipText["en"]
	}
	store := d[dataStore]
	if n, ok := storeNames[store]; ok {
		store = n[0]
		if locale == "ja" {
			store = n[1]
		}
	}
	data := struct {
		L                                   slipLabels
		Store, Code, Receipt, Deadline, URL string
		DeadlineText                        string
	}{L: l, Store: store, Code: d[dataConfirmation], Receipt: d[dataReceipt], Deadline: d[dataDeadline]}
	if u := d[dataInstructions]; strings.HasPrefix(u, "https://") || strings.HasPrefix(u, k.origin+"/") {
		data.URL = u
	}
	if t, err := time.Parse(time.RFC3339, d[dataDeadline]); err == nil {
		data.DeadlineText = t.In(japan).Format("2006-01-02 15:04 MST")
	}
	var b strings.Builder
	if err := instructionsTemplate.Execute(&b, data); err != nil {
		return ""
	}
	return template.HTML(b.String())
}

// japan is the time zone konbini deadlines are given in (UTC+9, no
// daylight saving), fixed so the page needs no tz database.
var japan = time.FixedZone("JST", 9*60*60)
