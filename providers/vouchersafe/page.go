// The customer's side: the pay page's part (the JID form, then the code,
// who to pay and "Payment completed"), and the provider's routes under
// {base}/vouchersafe/: /{ref}/send, /{ref}/done, /{ref}/checking and
// /{ref}/code.png.
package vouchersafe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"mellium.im/xmpp/stanza"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/templates"
)

var pageTmpl = template.Must(template.New("vouchersafe").Parse(`<section class="vouchersafe">
{{- if .NotFound}}<p class="notice" role="alert">{{.T.notfound}}</p>{{end}}
{{- if .SentTo}}
<p class="lead">{{printf .T.sent .SentTo}}</p>
<dl class="summary">
<dt>{{.T.code}}</dt><dd><strong class="code">{{.Code}}</strong><br><img src="{{.CodeURL}}" alt="{{.Code}}"></dd>
<dt>{{.T.payee}}</dt><dd><code>{{.Payee}}</code></dd>
<dt>{{.T.issuer}}</dt><dd>{{.Issuer}}</dd>
</dl>
<p>{{.T.how}}</p>
<form method="post" action="{{.Done}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" class="button primary">{{.T.done}}</button>
</form>
{{- if .CanSend}}
<details><summary>{{.T.again}}</summary>{{template "send" .}}</details>
{{- end}}
{{- else}}
<p class="lead">{{.T.intro}}</p>
{{template "send" .}}
{{- end}}
</section>
{{define "send"}}<form method="post" action="{{.Send}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<p><label>{{.T.jid}} <input name="jid" required maxlength="1000" autocomplete="off" placeholder="name@example.net/resource"></label></p>
{{- if gt (len .Issuers) 1}}
<p><label>{{.T.choose}} <select name="issuer">{{range .Issuers}}<option>{{.}}</option>{{end}}</select></label></p>
{{- end}}
<p><button type="submit" class="button primary">{{.T.send}}</button></p>
</form>{{end}}`))

var pageText = map[string]map[string]string{
	"en": {
		"intro":         "Open your Voucher-Safe client and enter the Jabber ID (JID) it is connected at (Advanced → Show JID). We will send the order to it, encrypted under a code shown here.",
		"jid":           "Your client's JID",
		"choose":        "Pay with vouchers of",
		"send":          "Send the order to my client",
		"sent":          "The order was sent to %s.",
		"code":          "Decryption code",
		"payee":         "Pay to",
		"issuer":        "Issuer",
		"how":           "In your Voucher-Safe client, click Payment and enter the code above: the payment form fills in with this order. Once you have paid, press Payment completed.",
		"done":          "Payment completed",
		"again":         "Send it again, or to another client",
		"notfound":      "Your payment was not found in the shop's safe yet. If you have paid, wait a minute and press Payment completed again.",
		"checking":      "Checking your payment",
		"checking_lead": "We are looking for your payment in the shop's safe. This can take a minute; this page updates by itself.",
		"bad_jid":       "That is not a Jabber ID.",
		"too_many":      "The order was already sent 3 times for this payment. Please choose another way to pay, or contact the shop.",
		"bot_down":      "The message could not be sent: the Voucher-Safe network cannot be reached now. Please try again in a minute.",
		"issuer_bad":    "Please choose one of the issuers shown.",
		"check_failed":  "Your payment could not be checked just now. Please try again in a minute; if you paid, nothing is lost.",
		"busy":          "Many payments are being checked right now. Please try again in a minute; if you paid, nothing is lost.",
		"not_sent":      "Send the order to your client first.",
	},
	"ja": {
		"intro":         "Voucher-Safe クライアントを開き、接続中の Jabber ID（JID）を入力してください（Advanced → Show JID）。ここに表示するコードで暗号化したご注文をお送りします。",
		"jid":           "クライアントの JID",
		"choose":        "お支払いに使うバウチャーの発行者",
		"send":          "注文をクライアントに送る",
		"sent":          "ご注文を %s に送りました。",
		"code":          "復号コード",
		"payee":         "お支払い先",
		"issuer":        "発行者",
		"how":           "Voucher-Safe クライアントで Payment をクリックし、上のコードを入力すると、このご注文の内容が入力されます。お支払い後に「支払い完了」を押してください。",
		"done":          "支払い完了",
		"again":         "もう一度、または別のクライアントに送る",
		"notfound":      "お支払いはまだショップのセーフで見つかっていません。お支払い済みの場合は、1分ほど待ってからもう一度「支払い完了」を押してください。",
		"checking":      "お支払いを確認しています",
		"checking_lead": "ショップのセーフでお支払いを探しています。1分ほどかかることがあります。このページは自動で更新されます。",
		"bad_jid":       "Jabber ID ではありません。",
		"too_many":      "このお支払いの注文はすでに3回送られています。別のお支払い方法を選ぶか、ショップにお問い合わせください。",
		"bot_down":      "メッセージを送れませんでした。Voucher-Safe のネットワークに接続できません。1分ほどしてからもう一度お試しください。",
		"issuer_bad":    "表示された発行者から選んでください。",
		"check_failed":  "いまお支払いを確認できませんでした。1分ほどしてからもう一度お試しください。お支払い済みでも失われることはありません。",
		"busy":          "ただいま多くのお支払いを確認しています。1分ほどしてからもう一度お試しください。お支払い済みでも失われることはありません。",
		"not_sent":      "先にご注文をクライアントに送ってください。",
	},
}

func textFor(locale string) map[string]string {
	if t, ok := pageText[locale]; ok {
		return t
	}
	return pageText["en"]
}

// Start shows the provider's part of the pay page: the form that sends the
// order to the customer's client, or, once sent, the code and "Payment
// completed".
func (v *VoucherSafe) Start(_ context.Context, p provider.Payment) (provider.Start, error) {
	var b bytes.Buffer
	d := p.ProviderData
	sends, _ := strconv.Atoi(d[dataSends])
	base := v.env.BasePath + "/" + Name + "/" + p.Ref
	err := pageTmpl.Execute(&b, map[string]any{
		"T": textFor(p.Locale), "SentTo": d[dataTo], "Code": d[dataCode], "CodeURL": base + "/code.png",
		"Payee": v.MerchantVS, "Issuer": d[dataIssuer], "Issuers": v.Issuers, "CSRF": v.env.CSRFToken(p.Ref),
		"Send": base + "/send", "Done": base + "/done", "CanSend": sends < MaxSends,
		"NotFound": d[dataLast] == "not_found",
	})
	return provider.Start{Page: template.HTML(b.String())}, err
}

// stripe picks one of the send locks for an order: sends of one order
// take turns, without a lock per order kept for ever.
func stripe(orderID string) int {
	h := fnv.New32a()
	h.Write([]byte(orderID))
	return int(h.Sum32() % uint32(len(runState{}.sending)))
}

// run is one pickup for an attempt: under way until done is closed.
type run struct {
	done chan struct{}
	at   time.Time // started, then ended
	f    provider.Finding
	err  error
}

// ServeHTTP serves the provider's routes.
func (v *VoucherSafe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref, action, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	locale := v.env.Locale(r)
	t := textFor(locale)
	o, p, err := v.env.Lookup(r.Context(), ref)
	if ref == "" || err != nil || o.Site != v.env.Site || p.Amount.Currency() == "" {
		v.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	p.Locale = locale
	payURL := v.env.BasePath + "/pay/" + o.Current().Ref + "?provider=" + Name
	fail := func(status int, msg string) {
		v.env.Render(w, r, status, "error", templates.Page{Message: msg, RetryURL: payURL})
	}
	switch {
	case action == "code.png" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		code := p.ProviderData[dataCode]
		img, err := CodePNG(code)
		if code == "" || err != nil {
			v.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(img)
		return
	case action == "checking" && r.Method == http.MethodGet:
		v.serveChecking(w, r, o, p, payURL)
		return
	case r.Method != http.MethodPost || (action != "send" && action != "done"):
		v.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !v.env.VerifyCSRF(r, ref) {
		v.env.Render(w, r, http.StatusForbidden, "error", templates.Page{MessageKey: "error.form_expired", RetryURL: payURL})
		return
	}
	if !o.Status.Open() || o.Current().Ref != ref || o.Current().Failed {
		http.Redirect(w, r, v.env.BasePath+"/pay/"+o.Current().Ref, http.StatusSeeOther)
		return
	}
	if action == "send" {
		v.serveSend(w, r, o, p, payURL, t, fail)
		return
	}
	if p.ProviderData[dataTo] == "" {
		fail(http.StatusBadRequest, t["not_sent"])
		return
	}
	v.startPickup(p)
	http.Redirect(w, r, v.env.BasePath+"/"+Name+"/"+ref+"/checking", http.StatusSeeOther)
}

// serveSend sends the order message to the JID the customer gave.
func (v *VoucherSafe) serveSend(w http.ResponseWriter, r *http.Request, o *order.Order, p provider.Payment, payURL string, t map[string]string, fail func(int, string)) {
	to, err := ParseCustomerJID(r.PostFormValue("jid"))
	if err != nil {
		fail(http.StatusBadRequest, t["bad_jid"]+" "+err.Error())
		return
	}
	issuer := v.Issuers[0]
	if len(v.Issuers) > 1 {
		issuer = r.PostFormValue("issuer")
		if !v.accepts(issuer) {
			fail(http.StatusBadRequest, t["issuer_bad"])
			return
		}
	}
	lock := &v.rs.sending[stripe(o.ID)]
	lock.Lock()
	defer lock.Unlock()
	o, p, err = v.env.Lookup(r.Context(), p.Ref) // the counts as stored now
	if err != nil {
		fail(http.StatusInternalServerError, t["check_failed"])
		return
	}
	sends, _ := strconv.Atoi(p.ProviderData[dataSends])
	total := 0
	for _, a := range o.Attempts {
		n, _ := strconv.Atoi(a.ProviderData[dataSends])
		total += n
	}
	if sends >= MaxSends || total >= MaxOrderSends {
		fail(http.StatusTooManyRequests, t["too_many"])
		return
	}
	due := p.Amount
	if r := p.Received; r.Valid() && r.Currency() == due.Currency() && r.Cmp(due) < 0 {
		due = due.Sub(r) // part of it arrived: the message asks for the rest
	}
	code, err := NewSecret(v.SecretLength)
	if err != nil {
		fail(http.StatusInternalServerError, t["check_failed"])
		return
	}
	subject := "Your order #" + o.ID + " from " + v.env.Site
	data, err := Encrypt(OrderInfo{Payee: v.MerchantVS, Amount: due.String(), Currency: due.Currency(),
		Issuer: issuer, Subject: subject, Baggage: map[string]string{BaggageKey: p.Ref}}, code)
	if err != nil {
		fail(http.StatusInternalServerError, t["check_failed"])
		return
	}
	// The send is counted before it is made, so a failing send counts too.
	if _, err := v.env.Report(r.Context(), order.ByCustomer, provider.Finding{Ref: p.Ref, Data: map[string]string{dataSends: strconv.Itoa(sends + 1)}}); err != nil {
		fail(http.StatusServiceUnavailable, t["check_failed"])
		return
	}
	m := OrderMessage{Message: stanza.Message{To: to, Type: stanza.NormalMessage, ID: "order-" + order.NewRef()},
		Subject: subject, Body: "Open this message in your Voucher-Safe client and enter the decryption code shown on the shop's page."}
	m.SetData(data)
	if err := v.bot.Send(r.Context(), m, sendWait); err != nil {
		v.env.Logger.Warn("voucher-safe: order message not sent", zap.String("site", v.env.Site), zap.String("order", o.ID), zap.Error(err))
		fail(http.StatusServiceUnavailable, t["bot_down"])
		return
	}
	if _, err := v.env.Report(r.Context(), order.ByCustomer, provider.Finding{Ref: p.Ref, Data: map[string]string{
		dataTo: to.String(), dataCode: code, dataIssuer: issuer, dataLast: ""}}); err != nil {
		fail(http.StatusServiceUnavailable, t["check_failed"])
		return
	}
	http.Redirect(w, r, payURL, http.StatusSeeOther)
}

// startPickup starts the attempt's pickup unless one is under way (a
// click's, or the reconciler's): ten clicks make one pickup.
func (v *VoucherSafe) startPickup(p provider.Payment) *run {
	ru, started := v.claim(p.Ref)
	if !started {
		return ru
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(v.PickupTimeout)+time.Minute)
		defer cancel()
		ru.f, ru.err = v.pickUp(ctx, p.Ref, order.ByReturn, true)
		v.finish(ru)
	}()
	return ru
}

// claim registers a pickup for ref, unless one is under way; it reports
// whether the caller is to run it.
func (v *VoucherSafe) claim(ref string) (*run, bool) {
	v.rs.mu.Lock()
	defer v.rs.mu.Unlock()
	if cur := v.rs.runs[ref]; cur != nil {
		select {
		case <-cur.done:
		default:
			return cur, false
		}
	}
	now := v.env.Now()
	if len(v.rs.runs) > 1000 {
		for k, r := range v.rs.runs { // forget pickups long done
			select {
			case <-r.done:
				if now.Sub(r.at) > 10*time.Minute {
					delete(v.rs.runs, k)
				}
			default:
			}
		}
	}
	ru := &run{done: make(chan struct{}), at: now}
	v.rs.runs[ref] = ru
	return ru, true
}

func (v *VoucherSafe) finish(ru *run) {
	v.rs.mu.Lock()
	ru.at = v.env.Now()
	v.rs.mu.Unlock()
	close(ru.done)
}

// pickUp runs the pickup and returns what it found, applied when apply is
// set (else the caller, the reconciler, applies it). That it started is
// stored before it runs, and its output with the finding, in one
// transaction, so that a crash in between leaves a mark for the operator
// (Check finds it). The attempt is read again after the pickup, so what it
// found is judged against the attempt as it is then.
func (v *VoucherSafe) pickUp(ctx context.Context, ref string, cause order.CauseKind, apply bool) (provider.Finding, error) {
	started := provider.Finding{Ref: ref, Data: map[string]string{dataPickup: "started " + v.env.Now().UTC().Format(time.RFC3339)}}
	if _, err := v.env.Report(ctx, cause, started); err != nil {
		return provider.Finding{}, err
	}
	out, err := v.pickup.Run(ctx, ref)
	if err != nil {
		v.env.Logger.Warn("voucher-safe: pickup failed", zap.String("site", v.env.Site), zap.String("ref", ref),
			zap.Int("exit", out.Exit), zap.String("last_line", truncate(out.Line, 200)), zap.Error(err))
		// The CLI failed, and said so: the mark goes. A pickup stopped at
		// pickup_timeout may have taken the voucher out already: its mark
		// stays, and the operator is told what to check.
		f := provider.Finding{Ref: ref, Data: map[string]string{dataPickup: "", dataOutput: truncate(out.Line, 500), dataLast: "error"}}
		if errors.Is(err, ErrTimeout) {
			delete(f.Data, dataPickup)
			f.Data[dataAttention] = v.env.Now().UTC().Format(time.RFC3339) + ": a pickup was stopped after pickup_timeout; its payment may have left the merchant safe " +
				v.MerchantVS + " without being recorded. Check the safe's receipts for orderId=" + ref + "."
		}
		if errors.Is(err, ErrBusy) && out.Exit == -1 {
			f.Data = map[string]string{dataPickup: ""} // it never ran
		}
		if _, rerr := v.env.Report(ctx, cause, f); rerr != nil {
			return f, rerr
		}
		return f, err
	}
	if out.Line != "NOT FOUND" {
		// Logged before it is stored, so that a store failing now loses
		// nothing the operator cannot find again.
		v.env.Logger.Info("voucher-safe: pickup output", zap.String("site", v.env.Site), zap.String("ref", ref), zap.String("last_line", truncate(out.Line, 500)))
	}
	o, p, err := v.env.Lookup(ctx, ref)
	if err != nil {
		return provider.Finding{}, err
	}
	f := v.outcome(p, out)
	if f.Status != "" && f.Status != order.Failed && (!o.Status.Open() || o.Current().Ref != ref) {
		// A voucher found after the order was paid or ended, or for an
		// attempt a newer one replaced: it does not pay the order twice,
		// and the operator must return it.
		f.Data[dataAttention] = fmt.Sprintf("%s: a Voucher-Safe payment (%s) was taken out of %s for this attempt after the order was %s: refund it to the payer.",
			v.env.Now().UTC().Format(time.RFC3339), truncate(out.Line, 300), v.MerchantVS, o.Status)
		f.Status, f.Paid, f.Note = "", money.Amount{}, ""
		v.env.Logger.Error("voucher-safe: payment picked up for an order that cannot take it", zap.String("site", v.env.Site), zap.String("ref", ref), zap.String("order_status", string(o.Status)))
	}
	if !apply {
		return f, nil
	}
	_, err = v.env.Report(ctx, cause, f)
	return f, err
}

// serveChecking is the live page while a pickup runs, and where it ends.
func (v *VoucherSafe) serveChecking(w http.ResponseWriter, r *http.Request, o *order.Order, p provider.Payment, payURL string) {
	v.rs.mu.Lock()
	ru := v.rs.runs[p.Ref]
	v.rs.mu.Unlock()
	t := textFor(p.Locale)
	if ru != nil {
		select {
		case <-ru.done:
		default:
			w.Header().Set("Refresh", "2")
			v.env.Render(w, r, http.StatusOK, "processing", templates.Page{Ref: p.Ref, OrderID: o.ID, Amount: p.Amount,
				Status: string(o.Status), Message: t["checking_lead"]})
			return
		}
	}
	switch {
	case ru != nil && errors.Is(ru.err, ErrBusy):
		v.env.Render(w, r, http.StatusServiceUnavailable, "error", templates.Page{Message: t["busy"], RetryURL: payURL})
	case ru != nil && ru.err != nil:
		v.env.Render(w, r, http.StatusBadGateway, "error", templates.Page{Message: t["check_failed"], RetryURL: payURL})
	case ru != nil && (ru.f.Status == order.Paid || ru.f.Status == order.OnHold):
		http.Redirect(w, r, v.env.BasePath+"/return/"+Name+"/"+p.Ref, http.StatusSeeOther)
	default:
		http.Redirect(w, r, payURL, http.StatusSeeOther)
	}
}

// Check is the reconciler's pickup for an attempt whose order message went
// out but which is not paid: a customer who paid and closed the browser
// still gets the order paid. It runs at most once a minute per attempt,
// except for the last check before the order expires. A pickup that a
// crash interrupted is flagged for the operator first.
func (v *VoucherSafe) Check(ctx context.Context, p provider.Payment) (provider.Finding, error) {
	d := p.ProviderData
	if d[dataTo] == "" {
		return provider.Finding{}, nil
	}
	now := v.env.Now()
	v.rs.mu.Lock()
	recent := now.Sub(v.rs.lastRun[p.Ref]) < time.Minute && now.Before(p.ExpiresAt)
	v.rs.mu.Unlock()
	if recent {
		return provider.Finding{}, nil
	}
	ru, mine := v.claim(p.Ref)
	if !mine {
		return provider.Finding{}, nil // a customer's pickup is under way
	}
	defer v.finish(ru)
	v.rs.mu.Lock()
	if len(v.rs.lastRun) > 1000 {
		for k, at := range v.rs.lastRun {
			if now.Sub(at) > 10*time.Minute {
				delete(v.rs.lastRun, k)
			}
		}
	}
	v.rs.lastRun[p.Ref] = now
	v.rs.mu.Unlock()
	if started := d[dataPickup]; started != "" {
		note := "a pickup " + started + " was interrupted (the server stopped): its payment may have left the merchant safe " +
			v.MerchantVS + " without being recorded. Check the safe's receipts for orderId=" + p.Ref + "; a pickup is run again."
		v.env.Logger.Error("voucher-safe: interrupted pickup found", zap.String("site", v.env.Site), zap.String("ref", p.Ref))
		if _, err := v.env.Report(ctx, order.ByReconcile, provider.Finding{Ref: p.Ref, Data: map[string]string{dataAttention: note}}); err != nil {
			return provider.Finding{}, err
		}
	}
	ru.f, ru.err = v.pickUp(ctx, p.Ref, order.ByReconcile, false)
	return ru.f, ru.err
}
