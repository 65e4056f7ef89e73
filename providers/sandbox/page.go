// The sandbox's hosted page, in the customer's language: the provider's
// own page inside the site's layout (templates' "provider" page), so the
// core templates hold nothing of the sandbox.
package sandbox

import (
	"bytes"
	"html/template"

	"github.com/caddy-checkout/checkout/templates"
)

// pageText is the page's text per locale; English for any other.
var pageText = map[string]map[string]string{
	"en": {
		"banner":  "Sandbox — no real money",
		"title":   "Test payment",
		"intro":   "This is the built-in test provider. No money moves. Choose what happens to this payment.",
		"held":    "This test payment is on hold, as a cash payment at a convenience store would be until the customer pays. Settle it now:",
		"outcome": "Outcome",
		"paid":    "Pay",
		"decline": "Decline",
		"later":   "Pay later",
		"settled": "Customer paid",
		"expire":  "Let it expire",

		"choose":      "Choose Pay, Decline or Pay later.",
		"choose_held": "This payment is on hold: choose Customer paid or Let it expire.",
		"undelivered": "The sandbox could not deliver its webhook (the site's log says why). Please try again.",
	},
	"ja": {
		"banner":  "サンドボックス — 実際のお金は動きません",
		"title":   "テスト決済",
		"intro":   "これは組み込みのテスト用決済です。実際のお金は動きません。この支払いの結果を選んでください。",
		"held":    "このテスト決済は保留中です（コンビニ払いでお客様が支払うまでと同じ状態です）。結果を選んでください：",
		"outcome": "結果",
		"paid":    "支払う",
		"decline": "拒否する",
		"later":   "後で支払う",
		"settled": "お客様が支払った",
		"expire":  "期限切れにする",

		"choose":      "「支払う」「拒否する」「後で支払う」のいずれかを選んでください。",
		"choose_held": "この支払いは保留中です。「お客様が支払った」か「期限切れにする」を選んでください。",
		"undelivered": "サンドボックスがWebhookを届けられませんでした（理由はサイトのログにあります）。もう一度お試しください。",
	},
}

func textFor(locale string) map[string]string {
	if t, ok := pageText[locale]; ok {
		return t
	}
	return pageText["en"]
}

var (
	introTmpl = template.Must(template.New("intro").Parse(`<p class="banner" role="note">{{.banner}}</p>`))
	formTmpl  = template.Must(template.New("form").Parse(`<form class="outcome" method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<fieldset>
<legend>{{.T.outcome}}</legend>
{{- if .Held}}
<p>{{.T.held}}</p>
<div class="buttons">
<button type="submit" name="outcome" value="paid" class="button primary">{{.T.settled}}</button>
<button type="submit" name="outcome" value="expired" class="button danger">{{.T.expire}}</button>
</div>
{{- else}}
<div class="buttons">
<button type="submit" name="outcome" value="paid" class="button primary">{{.T.paid}}</button>
<button type="submit" name="outcome" value="declined" class="button danger">{{.T.decline}}</button>
<button type="submit" name="outcome" value="on_hold" class="button">{{.T.later}}</button>
</div>
{{- end}}
</fieldset>
</form>`))
)

// page fills the site's "provider" page with the sandbox's part for p,
// whose order fields (amount, status, deadline) the caller has set.
func page(p templates.Page, locale, action, csrf string, held bool) (templates.Page, error) {
	t := textFor(locale)
	var intro, form bytes.Buffer
	if err := introTmpl.Execute(&intro, t); err != nil {
		return p, err
	}
	if err := formTmpl.Execute(&form, map[string]any{"T": t, "Action": action, "CSRF": csrf, "Held": held}); err != nil {
		return p, err
	}
	p.Title, p.Lead = t["title"], t["intro"]
	p.ProviderIntro, p.ProviderHTML = template.HTML(intro.String()), template.HTML(form.String())
	return p, nil
}
