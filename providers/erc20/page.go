// The customer's side of an on-chain payment: the part of the pay page
// with the amount, the receiving address and its EIP-681 payment URI, the
// QR code of that URI (served by the plugin as a PNG, no third party), and
// the progress shown on the live page.
package erc20

import (
	"bytes"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"rsc.io/qr"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/templates"
)

// PaymentURI is the EIP-681 URI of an ERC-20 transfer, which wallets open
// with the token, recipient and amount filled in.
func PaymentURI(token common.Address, chainID uint64, to common.Address, units *big.Int) string {
	return fmt.Sprintf("ethereum:%s@%d/transfer?address=%s&uint256=%s", token.Hex(), chainID, to.Hex(), units.String())
}

var pageTmpl = template.Must(template.New("erc20").Parse(`<section class="onchain" aria-label="{{.T.details}}">
{{if .Received}}<p class="lead">{{printf .T.partial .Received .Symbol .Total .Symbol .Amount .Symbol}}</p>
{{else}}<p class="lead">{{printf .T.send .Amount .Symbol}}</p>{{end}}
<p><img class="qr" src="{{.QR}}" width="232" height="232" alt="{{.T.qr}}"></p>
<dl class="summary">
<dt>{{.T.amount}}</dt><dd><input readonly value="{{.Amount}}" aria-label="{{.T.amount}}" size="24"> {{.Symbol}} <button type="button" class="copy" data-copy="{{.Amount}}">{{.T.copy}}</button></dd>
<dt>{{.T.address}}</dt><dd><input readonly value="{{.Address}}" aria-label="{{.T.address}}" size="44"> <button type="button" class="copy" data-copy="{{.Address}}">{{.T.copy}}</button></dd>
<dt>{{.T.token}}</dt><dd><code>{{.Token}}</code></dd>
</dl>
<p><a class="button" href="{{.URI}}">{{.T.wallet}}</a></p>
<p class="progress" data-progress>{{.Progress}}</p>
<p class="note">{{printf .T.note .Confirmations}}</p>
</section>`))

// pageText is the page's text per locale; English for any other.
var pageText = map[string]map[string]string{
	"en": {
		"details": "Payment details",
		"partial": "%s %s of %s %s has arrived. Send the remaining %s %s to the same address.",
		"send":    "Send exactly %s %s to this address. It is for this payment only.",
		"qr":      "QR code of the payment request",
		"amount":  "Amount",
		"address": "Address",
		"token":   "Token contract",
		"copy":    "Copy",
		"wallet":  "Open in wallet",
		"note":    "The payment counts once it has %d confirmations. This page updates by itself, or reload it.",
		"waiting": "Waiting for the payment…",
		"seen":    "Payment of %sseen: %d of %d confirmations.",
	},
	"ja": {
		"details": "お支払いの詳細",
		"partial": "%s %s（合計 %s %s）を受け取りました。残りの %s %s を同じアドレスへお送りください。",
		"send":    "このアドレスへ %s %s をちょうどお送りください。このお支払い専用のアドレスです。",
		"qr":      "お支払い請求のQRコード",
		"amount":  "金額",
		"address": "アドレス",
		"token":   "トークンのコントラクト",
		"copy":    "コピー",
		"wallet":  "ウォレットで開く",
		"note":    "%d 承認で入金が確定します。このページは自動で更新されます（再読み込みもできます）。",
		"waiting": "お支払いを待っています…",
		"seen":    "%sのお支払いを確認しました：承認 %d / %d。",
	},
}

func textFor(locale string) map[string]string {
	if t, ok := pageText[locale]; ok {
		return t
	}
	return pageText["en"]
}

// due is what the attempt still asks for, in base units: the amount less
// what has arrived (on-chain part payments).
func (e *ERC20) due(p provider.Payment) (units *big.Int, received money.Amount) {
	units = p.Amount.Minor()
	if r := p.Received; r.Valid() && r.Currency() == e.currency && r.Cmp(p.Amount) < 0 {
		return new(big.Int).Sub(units, r.Minor()), r
	}
	return units, money.Amount{}
}

// page renders the pay page's part for an attempt. After a part
// payment it asks for the rest, in the text, the payment URI and its QR
// code.
func (e *ERC20) page(p provider.Payment, addr common.Address) (template.HTML, error) {
	units, got := e.due(p)
	due, received := p.Amount.String(), ""
	if got.Valid() {
		if rest, err := e.env.Currencies.FromMinor(units, e.currency); err == nil {
			due, received = rest.String(), trimZeros(got.String())
		}
	}
	var b bytes.Buffer
	err := pageTmpl.Execute(&b, map[string]any{
		"T":        textFor(p.Locale),
		"Amount":   trimZeros(due),
		"Total":    trimZeros(p.Amount.String()),
		"Received": received,
		"Symbol":   e.currency,
		"Address":  addr.Hex(),
		"Token":    e.token.Hex(),
		"URI":      template.URL(PaymentURI(e.token, e.ChainID, addr, units)),
		// The amount due is in the QR's URL, so that a browser never
		// shows a cached code for what was due before a part payment.
		"QR":            e.env.BasePath + "/" + Name + "/qr/" + p.Ref + ".png?due=" + units.String(),
		"Progress":      e.progress(p.Ref, p.Locale).Text,
		"Confirmations": e.Confirmations,
	})
	return template.HTML(b.String()), err
}

// trimZeros drops the trailing zeros of a decimal amount ("1.50000000"
// → "1.5"): a token's 8 or 18 places are exact but hard to read.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// Progress is what the live page says of an attempt's transfers.
func (e *ERC20) Progress(ref string) provider.Progress { return e.progress(ref, "en") }

func (e *ERC20) progress(ref, locale string) provider.Progress {
	t := textFor(locale)
	pr := e.watcher.Progress(ref)
	if !pr.Seen {
		return provider.Progress{Text: t["waiting"]}
	}
	amt, err := e.env.Currencies.FromMinor(pr.Amount, e.currency)
	seen := ""
	if err == nil {
		seen = trimZeros(amt.String()) + " " + e.currency + " "
	}
	return provider.Progress{SeenAt: pr.SeenAt,
		Text: fmt.Sprintf(t["seen"], seen, min(pr.Confirmations, pr.Needed), pr.Needed)}
}

// ServeHTTP serves {base}/erc20/qr/{ref}.png: the QR code of the
// attempt's payment URI.
func (e *ERC20) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref, ok := strings.CutPrefix(r.URL.Path, "/qr/")
	ref, isPNG := strings.CutSuffix(ref, ".png")
	if !ok || !isPNG || ref == "" || strings.Contains(ref, "/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		e.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	_, p, err := e.env.Lookup(r.Context(), ref)
	if err != nil || !common.IsHexAddress(p.ProviderRef) || p.Amount.Currency() != e.currency {
		e.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	units, _ := e.due(p)
	code, err := qr.Encode(PaymentURI(e.token, e.ChainID, common.HexToAddress(p.ProviderRef), units), qr.M)
	if err != nil {
		http.Error(w, "cannot make the QR code", http.StatusInternalServerError)
		return
	}
	code.Scale = 8
	w.Header().Set("Content-Type", "image/png")
	// What is due changes with each part payment: never reuse a copy.
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(code.PNG())
}
