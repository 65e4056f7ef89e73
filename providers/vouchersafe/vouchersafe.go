// Package vouchersafe takes Voucher-Safe payments (seed 004): the customer
// tells the pay page the Jabber ID at which their Voucher-Safe client is
// connected; the provider's bot sends the order to that client over XMPP,
// encrypted under a code shown on the page (SPEC §5.1); the customer pays
// the merchant safe in their client and presses "Payment completed"; the
// provider then runs the Voucher-Safe CLI to pick the payment up from the
// merchant safe, and checks what it finds against the order.
package vouchersafe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"mellium.im/xmpp/jid"

	"github.com/caddy-checkout/checkout/provider"
)

// Name is the provider's name in routes and config.
const Name = "vouchersafe"

// Defaults.
const (
	DefaultPort          = 5222
	DefaultPickupTimeout = 90 * time.Second
	// MaxSends is how many order messages one attempt may send, and
	// MaxOrderSends one order over all its attempts: the bot must not
	// become a way to message any JID.
	MaxSends      = 3
	MaxOrderSends = 6
	// sendWait is how long a send waits for the bot's session to come back.
	sendWait = 5 * time.Second
)

// Units are the units the Voucher-Safe client takes amounts in (seed 004),
// with the minor units used here for those that are not ISO 4217 codes of
// today: grams of gold (GAU) and ounces of silver (XAG) to 4 places, Gold
// Globals (GLO) and Silver Isles (SIL) to 2, the old Russian rouble (RUR)
// to 2 and the old Turkish lira (TRL) to 0.
var Units = []string{"USD", "ARS", "AUD", "BRL", "CAD", "CHF", "CNY", "COP", "EUR", "GAU", "GBP", "GLO", "HKD",
	"IDR", "INR", "JPY", "KWD", "MXN", "MYR", "NZD", "PEN", "PHP", "RUR", "SEK", "SGD", "SIL", "TRL", "VUV", "XAG", "ZAR"}

// extraUnits are the non-ISO units and their decimals, registered at Setup.
var extraUnits = map[string]int{"GAU": 4, "XAG": 4, "GLO": 2, "SIL": 2, "RUR": 2, "TRL": 0}

// VoucherSafe is the Voucher-Safe provider for one site. Its exported
// fields are its configuration (the JSON twin of the Caddyfile block).
type VoucherSafe struct {
	// JID is the web bot's Jabber ID, which sends order messages, such as
	// webbot@ofs.vm.to. Use a placeholder such as {env.VS_JID}.
	JID string `json:"jid,omitempty"`
	// Password is the bot's password. Use a placeholder such as
	// {env.VS_PASSWORD}.
	Password string `json:"password,omitempty"`
	// Server is the XMPP server's host:port. Default: the JID's domain,
	// port 5222.
	Server string `json:"server,omitempty"`
	// XMPPCA is a PEM file of the CA to trust for the server's
	// certificate, besides the system's.
	XMPPCA string `json:"xmpp_ca,omitempty"`
	// MerchantVS is the merchant safe that receives payments, such as
	// mymerchantsafe-1234@vouchi.com.
	MerchantVS string `json:"merchant_vs,omitempty"`
	// Issuers are the voucher issuers accepted, such as VI-USV VI-EUV;
	// the customer picks one when there are several.
	Issuers []string `json:"issuers,omitempty"`
	// SecretLength is the length of the code the order message is
	// encrypted under: 8 to 24 hex digits. Default 12.
	SecretLength int `json:"secret_length,omitempty"`
	// PickupCommand runs the Voucher-Safe CLI's pickup, without a shell:
	// {key} becomes orderId and {value} the attempt's reference.
	PickupCommand []string `json:"pickup_command,omitempty"`
	// PickupTimeout bounds one pickup. Default 90s (the CLI may wait 30 s
	// for the safe's login lock).
	PickupTimeout caddy.Duration `json:"pickup_timeout,omitempty"`

	password string // Password with placeholders resolved
	jidText  string
	env      provider.Env
	bot      *Bot
	pickup   *Pickup

	rs *runState
}

// runState is what the provider keeps in memory while it runs.
type runState struct {
	mu      sync.Mutex
	sending [64]sync.Mutex       // one send at a time per order (by a hash of its id)
	runs    map[string]*run      // pickups under way or just done, per attempt
	lastRun map[string]time.Time // the reconciler's last pickup per attempt
}

var (
	_ provider.Provider      = (*VoucherSafe)(nil)
	_ provider.Setuper       = (*VoucherSafe)(nil)
	_ provider.Runner        = (*VoucherSafe)(nil)
	_ provider.EveryInstance = (*VoucherSafe)(nil)
	_ provider.Router        = (*VoucherSafe)(nil)
	_ provider.Checker       = (*VoucherSafe)(nil)
	_ provider.Labeler       = (*VoucherSafe)(nil)
	_ provider.Currencies    = (*VoucherSafe)(nil)
	_ provider.Personal      = (*VoucherSafe)(nil)
)

// Personal implements provider.Personal: the customer's Jabber ID, the
// code their order message was encrypted under, the last pickup's output
// and what the operator was asked to check (which may name the payer).
func (*VoucherSafe) Personal(key string) (string, bool) {
	return "", key == dataTo || key == dataCode || key == dataOutput || key == dataAttention
}

// Name implements provider.Provider.
func (*VoucherSafe) Name() string { return Name }

// Label implements provider.Labeler.
func (*VoucherSafe) Label(string) string { return "Voucher-Safe" }

// Accepts implements provider.Currencies.
func (*VoucherSafe) Accepts(currency string) bool {
	for _, u := range Units {
		if u == currency {
			return true
		}
	}
	return false
}

// ParseBotJID checks the bot's JID: a bare JID with a local part.
func ParseBotJID(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return jid.JID{}, errors.New("xmpp: the bot's JID must look like webbot@example.net (a local part and a domain, no resource)")
	}
	return j, nil
}

// ParseCustomerJID checks the JID a customer typed: a local part and a
// domain, with or without the resource their client shows.
func ParseCustomerJID(s string) (jid.JID, error) {
	s = strings.TrimSpace(s)
	j, err := jid.Parse(s)
	if err != nil || s == "" || len(s) > 1000 || j.Localpart() == "" || !hostname(j.Domainpart()) || strings.ContainsFunc(s, unicode.IsControl) {
		return jid.JID{}, fmt.Errorf("%q is not a Jabber ID: it looks like name@example.net/resource (your client shows it under Advanced → Show JID)", truncate(s, 80))
	}
	return j, nil
}

// hostname reports whether a JID's domain is a DNS name the bot may send
// to: dot-separated labels of letters, digits and hyphens (IDNs in their
// xn-- form), not an IP address.
func hostname(d string) bool {
	if d == "localhost" {
		return true
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 || len(d) > 253 || net.ParseIP(d) != nil {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
		if strings.HasPrefix(strings.ToLower(l), "xn--") && len(l) == 4 {
			return false
		}
	}
	last := labels[len(labels)-1]
	_, numeric := strconv.Atoi(last)
	return numeric != nil
}

// Setup checks the configuration; it opens no connection (Run does).
func (v *VoucherSafe) Setup(env provider.Env) error {
	if v.password == "" {
		v.password = v.Password
	}
	if v.jidText == "" {
		v.jidText = v.JID
	}
	me, err := ParseBotJID(v.jidText)
	if err != nil {
		return err
	}
	if v.password == "" {
		return errors.New("xmpp: the bot's password is empty")
	}
	if _, err := jid.Parse(v.MerchantVS); err != nil || !strings.Contains(v.MerchantVS, "@") {
		return fmt.Errorf("merchant_vs %q: want the safe that receives payments, such as mymerchantsafe-1234@vouchi.com", truncate(v.MerchantVS, 80))
	}
	if len(v.Issuers) == 0 {
		return errors.New("issuers: name at least one accepted issuer, such as VI-USV")
	}
	for _, is := range v.Issuers {
		if is == "" || len(is) > 40 || strings.ContainsAny(is, " \t\r\n\"<>&") {
			return fmt.Errorf("issuers: %q is not an issuer name", truncate(is, 40))
		}
	}
	if v.SecretLength == 0 {
		v.SecretLength = DefaultSecretLength
	}
	if v.SecretLength < MinSecretLength || v.SecretLength > MaxSecretLength {
		return fmt.Errorf("secret_length %d: want %d to %d hex digits", v.SecretLength, MinSecretLength, MaxSecretLength)
	}
	if v.PickupTimeout == 0 {
		v.PickupTimeout = caddy.Duration(DefaultPickupTimeout)
	}
	if v.pickup, err = NewPickup(v.PickupCommand, time.Duration(v.PickupTimeout), v.MerchantVS); err != nil {
		return err
	}
	v.pickup.Exclusive = env.Exclusive
	addr := v.Server
	if addr == "" {
		addr = net.JoinHostPort(me.Domainpart(), strconv.Itoa(DefaultPort))
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("xmpp server %q: want host:port, such as ofs.vm.to:5233", addr)
	}
	cfg := &tls.Config{ServerName: me.Domainpart(), MinVersion: tls.VersionTLS12}
	if v.XMPPCA != "" {
		pem, err := os.ReadFile(v.XMPPCA)
		if err != nil {
			return fmt.Errorf("xmpp_ca: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("xmpp_ca %s: no PEM certificate in it", v.XMPPCA)
		}
		cfg.RootCAs = pool
	}
	for u, d := range extraUnits {
		if env.Currencies != nil {
			if err := env.Currencies.Register(u, d); err != nil {
				return err
			}
		}
	}
	if env.Now == nil || env.Lookup == nil || env.Report == nil {
		return errors.New("incomplete site environment")
	}
	v.env = env
	v.bot = &Bot{JID: me, Password: v.password, Addr: addr, TLS: cfg, Logger: env.Logger}
	v.rs = &runState{runs: map[string]*run{}, lastRun: map[string]time.Time{}}
	return nil
}

// Run keeps the bot's XMPP session open until ctx ends.
func (v *VoucherSafe) Run(ctx context.Context) error { return v.bot.Run(ctx) }

// EveryInstance implements provider.EveryInstance: each instance sends
// its own customers' orders, so each keeps its own XMPP session (a
// resource of the same account).
func (v *VoucherSafe) EveryInstance() {}
