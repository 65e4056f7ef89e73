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

var pageTmpl = template.Must(template.New("erc20").Parse(`<section class="onchain" aria-label="Payment details">
{{if .Received}}<p class="lead">{{.Received}} {{.Symbol}} of {{.Total}} {{.Symbol}} has arrived. Send the remaining <strong>{{.Amount}} {{.Symbol}}</strong> to the same address.</p>
{{else}}<p class="lead">Send exactly <strong>{{.Amount}} {{.Symbol}}</strong> to this address. It is for this payment only.</p>{{end}}
<p><img class="qr" src="{{.QR}}" width="232" height="232" alt="QR code of the payment request"></p>
<dl class="summary">
<dt>Amount</dt><dd><input readonly value="{{.Amount}}" aria-label="Amount" size="24"> {{.Symbol}} <button type="button" class="copy" data-copy="{{.Amount}}">Copy</button></dd>
<dt>Address</dt><dd><input readonly value="{{.Address}}" aria-label="Address" size="44"> <button type="button" class="copy" data-copy="{{.Address}}">Copy</button></dd>
<dt>Token contract</dt><dd><code>{{.Token}}</code></dd>
</dl>
<p><a class="button" href="{{.URI}}">Open in wallet</a></p>
<p class="progress" data-progress>{{.Progress}}</p>
<p class="note">The payment counts once it has {{.Confirmations}} confirmations. This page updates by itself, or reload it.</p>
</section>`))

// page renders the pay page's part for an attempt. After a part
// payment it asks for the rest, in the text and in the payment URI.
func (e *ERC20) page(p provider.Payment, addr common.Address, units *big.Int) (template.HTML, error) {
	due, received := p.Amount.String(), ""
	if r := p.Received; r.Valid() && r.Currency() == e.currency && r.Cmp(p.Amount) < 0 {
		units = new(big.Int).Sub(units, r.Minor())
		if rest, err := money.FromMinor(units, e.currency); err == nil {
			due, received = rest.String(), trimZeros(r.String())
		}
	}
	var b bytes.Buffer
	err := pageTmpl.Execute(&b, map[string]any{
		"Amount":        trimZeros(due),
		"Total":         trimZeros(p.Amount.String()),
		"Received":      received,
		"Symbol":        e.currency,
		"Address":       addr.Hex(),
		"Token":         e.token.Hex(),
		"URI":           template.URL(PaymentURI(e.token, e.ChainID, addr, units)),
		"QR":            e.env.BasePath + "/" + Name + "/qr/" + p.Ref + ".png",
		"Progress":      e.Progress(p.Ref).Text,
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
func (e *ERC20) Progress(ref string) provider.Progress {
	pr := e.watcher.Progress(ref)
	if !pr.Seen {
		return provider.Progress{Text: "Waiting for the payment…"}
	}
	amt, err := money.FromMinor(pr.Amount, e.currency)
	seen := ""
	if err == nil {
		seen = trimZeros(amt.String()) + " " + e.currency + " "
	}
	return provider.Progress{SeenAt: pr.SeenAt,
		Text: fmt.Sprintf("Payment of %sseen: %d of %d confirmations.", seen, min(pr.Confirmations, pr.Needed), pr.Needed)}
}

// ServeHTTP serves {base}/erc20/qr/{ref}.png: the QR code of the
// attempt's payment URI.
func (e *ERC20) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref, ok := strings.CutPrefix(r.URL.Path, "/qr/")
	ref, isPNG := strings.CutSuffix(ref, ".png")
	if !ok || !isPNG || ref == "" || strings.Contains(ref, "/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		e.env.Render(w, r, http.StatusNotFound, "error", templates.Page{HTTPStatus: http.StatusNotFound})
		return
	}
	_, p, err := e.env.Lookup(r.Context(), ref)
	if err != nil || !common.IsHexAddress(p.ProviderRef) || p.Amount.Currency() != e.currency {
		e.env.Render(w, r, http.StatusNotFound, "error", templates.Page{HTTPStatus: http.StatusNotFound})
		return
	}
	code, err := qr.Encode(PaymentURI(e.token, e.ChainID, common.HexToAddress(p.ProviderRef), p.Amount.Minor()), qr.M)
	if err != nil {
		http.Error(w, "cannot make the QR code", http.StatusInternalServerError)
		return
	}
	code.Scale = 8
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(code.PNG())
}
