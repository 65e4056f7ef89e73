package templates

import (
	"html/template"
	"time"

	"github.com/caddy-checkout/checkout/money"
)

// Page is the data every customer page is rendered with. Callers fill it;
// Render sets Locale and Languages. Fields a page does not use may be left
// empty.
type Page struct {
	// Name is the page: "pay", "provider", "paid", "failed", "cancelled",
	// "expired", "already_paid", "processing" or "error".
	Name string
	// Base is the plugin's base path ("/_checkout"); assets are linked as
	// Base + AssetPrefix + file name.
	Base string
	// Locale is the language the page is rendered in; set by Render.
	Locale string
	// Languages are the enabled languages with links that switch to them;
	// set by Render when more than one language is enabled.
	Languages []Language

	Ref         string // the attempt reference
	OrderID     string // the shop's order id, shown to the customer
	Description string
	Amount      money.Amount // the amount due
	// Received is what has arrived so far (an under-paid crypto order); it
	// is shown only when valid.
	Received  money.Amount
	Status    string    // order state: pending, on_hold, paid, refunded, failed, cancelled, expired
	ExpiresAt time.Time // zero: no expiry shown
	Late      bool      // paid after expiry
	// Declined: the last attempt failed at Provider; the pay page says so
	// and offers to try again or choose another way.
	Declined bool

	// Title, Lead, ProviderIntro: a provider's own page ("provider"):
	// its title and lead text, and HTML shown above them (a notice);
	// ProviderHTML comes after the order summary. In the page's language,
	// from the provider; the HTML is trusted.
	Title         string
	Lead          string
	ProviderIntro template.HTML

	Providers    []Choice      // the ways to pay offered on the pay page
	Provider     string        // the chosen provider's Name
	ProviderHTML template.HTML // the chosen provider's block on the pay page (address and QR, a form); trusted
	CSRF         string        // value of the hidden "csrf" field of the page's form
	Action       string        // where the page's form posts

	ContinueURL string // back to the shop
	// Receipt is shown on the paid page of a paywalled path bought for a
	// program, with ReceiptExpires: the script sends it as a bearer token.
	Receipt        string
	ReceiptExpires time.Time
	RetryURL       string // back to the pay page
	StatusURL      string // JSON status, polled by live.js when EventSource is missing
	// EventsURL is the Server-Sent Events URL; with Status set, live.js
	// reloads the page when the order moves on from Status.
	EventsURL string

	// MessageKey is the error page's text: a key of the page messages
	// ("error.not_found") that says what went wrong and what to do, shown
	// in the page's language. Message is shown instead when it is empty:
	// text already in the page's language (a provider's UserMessage).
	MessageKey string
	Message    string // error page: what went wrong, already safe to show the customer
	HTTPStatus int    // error page: the status code shown; Render fills it from its status argument when zero

	// Brand presents the shop on the page; set by the site.
	Brand Brand

	// FormOrigins are origins added to the CSP form-action directive, for
	// providers the page's form redirects to ("https://checkout.stripe.com"):
	// browsers apply form-action to the redirects that follow a form POST.
	// Values that are not a bare http(s) origin are left out.
	FormOrigins []string
}

// Brand is the shop's name, logo and accent colour on a page.
type Brand struct {
	Name     string // shown at the top and in the title; empty: none
	LogoURL  string // the logo image, served by the plugin; empty: none
	StyleURL string // a stylesheet that sets the accent colour; empty: none
}

// Choice is one way to pay on the pay page.
type Choice struct {
	Name  string // provider name, posted as provider=<Name>
	Label string // what the customer reads ("Card", "Konbini")
}

// Language is an entry of the language switcher.
type Language struct {
	Code    string // "en"
	Name    string // the language's own name: "English", "日本語"
	URL     string // relative link ("?lang=en") that shows the page in it
	Current bool
}

// pageNames are the pages every Set has, in the order they are documented.
var pageNames = []string{"pay", "provider", "paid", "failed", "cancelled", "expired", "already_paid", "processing", "error"}

// Partial reports an order on hold with less than its amount received
// (an on-chain payment that came in parts): the customer must send the
// rest, not wait.
func (p Page) Partial() bool {
	return p.Received.Valid() && p.Amount.Valid() && p.Received.Currency() == p.Amount.Currency() && p.Received.Cmp(p.Amount) < 0
}
