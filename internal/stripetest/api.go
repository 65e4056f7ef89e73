// The API endpoints the fake models, with the validation Stripe applies to
// each and the errors it answers.
package stripetest

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// call is one routed API request.
type call struct {
	s       *Server
	method  string
	path    string
	account string
	id      string // the object id in the path, if any
	reqID   string
	idemKey string
	values  url.Values
}

// form decodes the parameters and refuses any sp does not list.
func (c *call) form(sp *spec) (form, *apiError) {
	f, err := decodeForm(c.values)
	if err != nil {
		return nil, err
	}
	if err := check(f, sp, ""); err != nil {
		return nil, err
	}
	return f, nil
}

// request is the event's request field for an event the call caused.
func (c *call) request() eventRequest {
	return eventRequest{ID: nullable(c.reqID), IdempotencyKey: nullable(c.idemKey)}
}

type route struct {
	handle func(*call) response
}

var (
	routeCreateSession = &route{createSession}
	routeGetSession    = &route{getSession}
	routeExpireSession = &route{expireSession}
	routeGetIntent     = &route{getIntent}
	routeCreateRefund  = &route{createRefund}
	routeGetRefund     = &route{getRefund}
)

// matchRoute finds the endpoint for a request and the object id in its path.
func matchRoute(method, path string) (*route, string) {
	parts := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	switch {
	case method == "POST" && len(parts) == 2 && parts[0] == "checkout" && parts[1] == "sessions":
		return routeCreateSession, ""
	case method == "GET" && len(parts) == 3 && parts[0] == "checkout" && parts[1] == "sessions" && parts[2] != "":
		return routeGetSession, parts[2]
	case method == "POST" && len(parts) == 4 && parts[0] == "checkout" && parts[1] == "sessions" && parts[2] != "" && parts[3] == "expire":
		return routeExpireSession, parts[2]
	case method == "GET" && len(parts) == 2 && parts[0] == "payment_intents" && parts[1] != "":
		return routeGetIntent, parts[1]
	case method == "POST" && len(parts) == 1 && parts[0] == "refunds":
		return routeCreateRefund, ""
	case method == "GET" && len(parts) == 2 && parts[0] == "refunds" && parts[1] != "":
		return routeGetRefund, parts[1]
	}
	return nil, ""
}

var expandOnly = hash(map[string]*spec{"expand": array(scalar)})

var sessionCreateSpec = hash(map[string]*spec{
	"mode":                 scalar,
	"success_url":          scalar,
	"cancel_url":           scalar,
	"client_reference_id":  scalar,
	"customer_email":       scalar,
	"expires_at":           scalar,
	"locale":               scalar,
	"metadata":             metadata,
	"payment_method_types": array(scalar),
	"payment_intent_data":  hash(map[string]*spec{"metadata": metadata}),
	"line_items": array(hash(map[string]*spec{
		"quantity": scalar,
		"price_data": hash(map[string]*spec{
			"currency":    scalar,
			"unit_amount": scalar,
			"product_data": hash(map[string]*spec{
				"name":        scalar,
				"description": scalar,
				"metadata":    metadata,
			}),
		}),
	})),
	"expand": array(scalar),
})

// maxAmount is Stripe's limit on an amount: eight digits in the currency's
// smallest unit ($999,999.99, ¥99,999,999).
const maxAmount = 99_999_999

func createSession(c *call) response {
	s := c.s
	f, e := c.form(sessionCreateSpec)
	if e != nil {
		return e.response(c.reqID)
	}
	now := s.now()

	mode, _ := f.str("mode")
	if mode == "" {
		return missingParam("mode").response(c.reqID)
	}
	if e := oneOf(mode, "mode", []string{"payment", "setup", "subscription"}); e != nil {
		return e.response(c.reqID)
	}
	if mode != "payment" {
		return invalidRequest("mode", "mode="+mode+" is valid at Stripe but stripetest models only mode=payment.").response(c.reqID)
	}

	successURL, _ := f.str("success_url")
	if successURL == "" {
		return missingParam("success_url").response(c.reqID)
	}
	if e := checkURL(successURL, "success_url"); e != nil {
		return e.response(c.reqID)
	}
	cancelURL, _ := f.str("cancel_url")
	if cancelURL != "" {
		if e := checkURL(cancelURL, "cancel_url"); e != nil {
			return e.response(c.reqID)
		}
	}

	rawItems := f.list("line_items")
	if len(rawItems) == 0 {
		return missingParam("line_items").response(c.reqID)
	}
	var (
		items    []lineItem
		currency string
		total    int64
	)
	for i, raw := range rawItems {
		li, _ := raw.(form)
		name := fmt.Sprintf("line_items[%d]", i)
		pd := li.sub("price_data")
		if pd == nil {
			return missingParam(name + "[price_data]").response(c.reqID)
		}
		cur, _ := pd.str("currency")
		if cur == "" {
			return missingParam(name + "[price_data][currency]").response(c.reqID)
		}
		cur = strings.ToLower(cur)
		if !isCurrencyCode(cur) {
			return invalidRequest(name+"[price_data][currency]", "Invalid currency: "+cur+
				". Stripe currencies are three-letter ISO codes in lowercase, such as usd or jpy.").response(c.reqID)
		}
		if currency != "" && cur != currency {
			return invalidRequest(name+"[price_data][currency]", fmt.Sprintf(
				"All line items must use the same currency: line_items[0] is in %s but %s is in %s.", currency, name, cur)).response(c.reqID)
		}
		currency = cur
		unit, has, e := pd.integer("unit_amount", name+"[price_data][unit_amount]", 0)
		if e != nil {
			return e.response(c.reqID)
		}
		if !has {
			return missingParam(name + "[price_data][unit_amount]").response(c.reqID)
		}
		pdd := pd.sub("product_data")
		if pdd == nil {
			return missingParam(name + "[price_data][product_data]").response(c.reqID)
		}
		product, _ := pdd.str("name")
		if product == "" {
			return missingParam(name + "[price_data][product_data][name]").response(c.reqID)
		}
		qty, has, e := li.integer("quantity", name+"[quantity]", 1)
		if e != nil {
			return e.response(c.reqID)
		}
		if !has {
			return missingParam(name + "[quantity]").response(c.reqID)
		}
		// Both factors are bounded first, so the product cannot overflow.
		if unit > maxAmount || qty > maxAmount || total+unit*qty > maxAmount {
			e := invalidRequest("line_items", fmt.Sprintf("The Checkout Session's total amount due must be no more than %s.", formatAmount(maxAmount, currency)))
			e.Code = "amount_too_large"
			return e.response(c.reqID)
		}
		total += unit * qty
		items = append(items, lineItem{name: product, unitAmount: unit, quantity: qty})
	}

	expiresAt, has, e := f.integer("expires_at", "expires_at", 0)
	if e != nil {
		return e.response(c.reqID)
	}
	// The documented range is "anywhere from 30 minutes to 24 hours after
	// Checkout Session creation"; both ends are accepted.
	switch d := expiresAt - now.Unix(); {
	case !has:
		expiresAt = now.Add(24 * time.Hour).Unix()
	case d < 30*60:
		return invalidRequest("expires_at", "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.").response(c.reqID)
	case d > 24*60*60:
		return invalidRequest("expires_at", "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.").response(c.reqID)
	}

	ref, _ := f.str("client_reference_id")
	if n := len([]rune(ref)); n > 200 {
		return invalidRequest("client_reference_id", fmt.Sprintf("Invalid string: %s...; must be at most 200 characters", string([]rune(ref)[:40]))).response(c.reqID)
	}
	email, _ := f.str("customer_email")
	if email != "" {
		local, domain, found := strings.Cut(email, "@")
		if !found || local == "" || !strings.Contains(domain, ".") {
			e := invalidRequest("customer_email", "Invalid email address: "+email)
			e.Code = "email_invalid"
			return e.response(c.reqID)
		}
	}
	md, e := checkMetadata(f.sub("metadata"), "metadata")
	if e != nil {
		return e.response(c.reqID)
	}
	intentMD, e := checkMetadata(f.sub("payment_intent_data").sub("metadata"), "payment_intent_data[metadata]")
	if e != nil {
		return e.response(c.reqID)
	}
	methods := f.strs("payment_method_types")
	for i, m := range methods {
		if e := oneOf(m, fmt.Sprintf("payment_method_types[%d]", i), checkoutMethodTypes); e != nil {
			return e.response(c.reqID)
		}
	}
	if len(methods) == 0 {
		methods = []string{"card"}
	}
	locale, hasLocale := f.str("locale")
	if hasLocale {
		if e := oneOf(locale, "locale", checkoutLocales); e != nil {
			return e.response(c.reqID)
		}
	}
	exp, e := parseExpand(f, "checkout.session")
	if e != nil {
		return e.response(c.reqID)
	}

	x := &session{
		id:                newID("cs_test_", 58),
		account:           c.account,
		created:           now.Unix(),
		expiresAt:         expiresAt,
		status:            "open",
		paymentStatus:     "unpaid",
		amountTotal:       total,
		currency:          currency,
		clientReferenceID: ref,
		successURL:        successURL,
		cancelURL:         cancelURL,
		customerEmail:     email,
		locale:            locale,
		metadata:          md,
		intentMetadata:    intentMD,
		methodTypes:       methods,
		items:             items,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[x.id] = x
	s.sessionOrder = append(s.sessionOrder, x)
	return ok(x.json(s.URL, exp))
}

// retrieve reads the call's expand[] for object and, under the server's
// lock, answers with the object find gives for the path's id; nil (an
// unknown id, or another account's object) is Stripe's 404.
func retrieve[T any](c *call, object, param string, find func(s *Server) *T, answer func(s *Server, x *T, exp expansion) response) response {
	f, e := c.form(expandOnly)
	if e != nil {
		return e.response(c.reqID)
	}
	exp, e := parseExpand(f, object)
	if e != nil {
		return e.response(c.reqID)
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	x := find(s)
	if x == nil {
		return noSuch(object, c.id, param, true).response(c.reqID)
	}
	return answer(s, x, exp)
}

// withSession answers with the session the path names.
func withSession(c *call, answer func(s *Server, x *session, exp expansion) response) response {
	return retrieve(c, "checkout.session", "session", func(s *Server) *session { return s.lookupSession(c.account, c.id) }, answer)
}

func getSession(c *call) response {
	return withSession(c, func(s *Server, x *session, exp expansion) response { return ok(x.json(s.URL, exp)) })
}

func expireSession(c *call) response {
	return withSession(c, func(s *Server, x *session, exp expansion) response {
		if x.status != "open" {
			return stateError("", "", fmt.Sprintf(
				"Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of `%s`.", x.status)).response(c.reqID)
		}
		x.status = "expired"
		s.emitLocked("checkout.session.expired", x.account, x.json(s.URL, nil), c.request())
		return ok(x.json(s.URL, exp))
	})
}

func getIntent(c *call) response {
	return retrieve(c, "payment_intent", "intent", func(s *Server) *paymentIntent {
		if pi := s.intents[c.id]; pi != nil && pi.account == c.account {
			return pi
		}
		return nil
	}, func(_ *Server, pi *paymentIntent, exp expansion) response { return ok(pi.json(exp)) })
}

var refundCreateSpec = hash(map[string]*spec{
	"payment_intent": scalar,
	"charge":         scalar,
	"amount":         scalar,
	"reason":         scalar,
	"metadata":       metadata,
	"expand":         array(scalar),
})

func createRefund(c *call) response {
	f, e := c.form(refundCreateSpec)
	if e != nil {
		return e.response(c.reqID)
	}
	piID, _ := f.str("payment_intent")
	chID, _ := f.str("charge")
	switch {
	case piID == "" && chID == "":
		return invalidRequest("", "One of the following params should be provided for this request: payment_intent or charge.").response(c.reqID)
	case piID != "" && chID != "":
		e := invalidRequest("charge", "You may only specify one of these parameters: charge, payment_intent.")
		e.Code = "parameters_exclusive"
		return e.response(c.reqID)
	}
	amount, hasAmount, e := f.integer("amount", "amount", 1)
	if e != nil {
		return e.response(c.reqID)
	}
	reason, _ := f.str("reason")
	if reason != "" {
		if e := oneOf(reason, "reason", []string{"duplicate", "fraudulent", "requested_by_customer"}); e != nil {
			return e.response(c.reqID)
		}
	}
	md, e := checkMetadata(f.sub("metadata"), "metadata")
	if e != nil {
		return e.response(c.reqID)
	}
	exp, e := parseExpand(f, "refund")
	if e != nil {
		return e.response(c.reqID)
	}

	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var ch *charge
	if piID != "" {
		pi := s.intents[piID]
		if pi == nil || pi.account != c.account {
			return noSuch("payment_intent", piID, "payment_intent", false).response(c.reqID)
		}
		if pi.status != "succeeded" || pi.charge == nil {
			return stateError("payment_intent", "charge_not_refundable", fmt.Sprintf(
				"This PaymentIntent (%s) does not have a successful charge to refund.", pi.id)).response(c.reqID)
		}
		ch = pi.charge
	} else {
		ch = s.charges[chID]
		if ch == nil || ch.account != c.account {
			return noSuch("charge", chID, "charge", false).response(c.reqID)
		}
	}
	if !hasAmount {
		amount = ch.amount - ch.amountRefunded
	}
	re, _, e := s.refundLocked(ch, amount, reason, md, c.request())
	if e != nil {
		return e.response(c.reqID)
	}
	return ok(re.json(exp))
}

// refundLocked refunds amount of ch, emitting charge.refunded and
// refund.created. s.mu must be held.
func (s *Server) refundLocked(ch *charge, amount int64, reason string, md map[string]string, req eventRequest) (*refund, []emitted, *apiError) {
	remaining := ch.amount - ch.amountRefunded
	switch {
	case remaining == 0:
		return nil, nil, stateError("", "charge_already_refunded", fmt.Sprintf("Charge %s has already been refunded.", ch.id))
	case amount > ch.amount:
		return nil, nil, stateError("amount", "", fmt.Sprintf("Refund amount (%s) is greater than charge amount (%s)",
			formatAmount(amount, ch.currency), formatAmount(ch.amount, ch.currency)))
	case amount > remaining:
		return nil, nil, stateError("amount", "", fmt.Sprintf("Refund amount (%s) is greater than unrefunded amount on charge (%s)",
			formatAmount(amount, ch.currency), formatAmount(remaining, ch.currency)))
	}
	re := &refund{
		id:       newID("re_", 24),
		account:  ch.account,
		created:  s.now().Unix(),
		amount:   amount,
		currency: ch.currency,
		reason:   reason,
		metadata: md,
		charge:   ch,
	}
	s.refunds[re.id] = re
	ch.amountRefunded += amount
	return re, []emitted{
		s.emitLocked("charge.refunded", ch.account, ch.json(nil), req),
		s.emitLocked("refund.created", ch.account, re.json(nil), req),
	}, nil
}

func getRefund(c *call) response {
	return retrieve(c, "refund", "refund", func(s *Server) *refund {
		if re := s.refunds[c.id]; re != nil && re.account == c.account {
			return re
		}
		return nil
	}, func(_ *Server, re *refund, exp expansion) response { return ok(re.json(exp)) })
}

// lookupSession finds a session visible to account. s.mu must be held.
func (s *Server) lookupSession(account, id string) *session {
	x := s.sessions[id]
	if x == nil || x.account != account {
		return nil
	}
	return x
}

// checkURL accepts what Stripe accepts for success_url and cancel_url: an
// absolute http(s) URL, which may contain the {CHECKOUT_SESSION_ID} template.
func checkURL(raw, param string) *apiError {
	u, err := url.Parse(strings.ReplaceAll(raw, "{CHECKOUT_SESSION_ID}", "cs_test_x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 5000 {
		e := invalidRequest(param, "Not a valid URL")
		e.Code = "url_invalid"
		return e
	}
	return nil
}

func isCurrencyCode(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// formatAmount writes an amount as Stripe's messages do ("$25.00", "¥500").
func formatAmount(amount int64, currency string) string {
	digits := 2
	switch currency {
	case "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf":
		digits = 0
	case "bhd", "jod", "kwd", "omr", "tnd":
		digits = 3
	}
	n := fmt.Sprint(amount)
	if digits > 0 {
		for len(n) <= digits {
			n = "0" + n
		}
		n = n[:len(n)-digits] + "." + n[len(n)-digits:]
	}
	switch currency {
	case "usd":
		return "$" + n
	case "eur":
		return "€" + n
	case "gbp":
		return "£" + n
	case "jpy":
		return "¥" + n
	}
	return n + " " + strings.ToUpper(currency)
}

// checkoutMethodTypes and checkoutLocales are the enumerations of
// payment_method_types[] and locale in Stripe's OpenAPI spec for
// POST /v1/checkout/sessions (as shipped in stripe-mock v0.203.0).
var (
	checkoutMethodTypes = []string{
		"acss_debit", "affirm", "afterpay_clearpay", "alipay", "alma", "amazon_pay", "au_becs_debit", "bacs_debit",
		"bancontact", "billie", "bizum", "blik", "boleto", "card", "cashapp", "crypto", "customer_balance", "eps",
		"fpx", "giropay", "grabpay", "ideal", "kakao_pay", "klarna", "konbini", "kr_card", "link", "mb_way",
		"mobilepay", "multibanco", "naver_pay", "nz_bank_account", "oxxo", "p24", "pay_by_bank", "payco", "paynow",
		"paypal", "payto", "pix", "promptpay", "revolut_pay", "samsung_pay", "satispay", "scalapay", "sepa_debit",
		"sofort", "sunbit", "swish", "twint", "upi", "us_bank_account", "wechat_pay", "zip",
	}
	checkoutLocales = []string{
		"auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr", "fr-CA", "hr",
		"hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl",
		"sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW",
	}
)
