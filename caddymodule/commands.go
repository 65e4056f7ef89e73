// The `caddy checkout` commands: demo, secret, sign-link and orders.
package caddymodule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/store/postgres"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "checkout",
		Usage: "demo|secret|sign-link|orders|copy-store",
		Short: "caddy-checkout: payments in front of any shop",
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(demoCommand(), secretCommand(), signLinkCommand(), ordersCommand(), copyStoreCommand())
		},
	})
}

func secretCommand() *cobra.Command {
	var rotate bool
	var current string
	var overlap time.Duration
	c := &cobra.Command{
		Use:   "secret",
		Short: "Print a new site secret (whsec_...) for the secret setting",
		Long: "Print a new site secret. With --rotate, print the Caddyfile lines that replace the\n" +
			"site's secret line for a rotation without downtime: the new secret, and the current\n" +
			"one as previous_secret until --overlap from now. The current secret is read from\n" +
			"--secret, or from the CHECKOUT_SECRET environment variable.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !rotate {
				fmt.Fprintln(cmd.OutOrStdout(), sign.NewSecret())
				return nil
			}
			lines, err := rotationLines(cmp.Or(current, os.Getenv("CHECKOUT_SECRET")), overlap, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "# First let the shop's success page accept both secrets (X-Checkout-Signature is the new one's).\n"+
				"# Then, in the checkout block, put these two lines in place of the secret line and reload Caddy.\n"+
				"# Until the time given, links, tokens, receipts and API calls signed with the old secret still work,\n"+
				"# and callbacks carry both signatures: switch the shop's verifier to the new secret before then.")
			fmt.Fprint(cmd.OutOrStdout(), lines)
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&rotate, "rotate", false, "print the lines of a rotation: a new secret and the current one as previous_secret")
	f.StringVar(&current, "secret", "", "with --rotate: the site's current secret (default: $CHECKOUT_SECRET)")
	f.DurationVar(&overlap, "overlap", 7*24*time.Hour, "with --rotate: how long the current secret keeps verifying")
	return c
}

// rotationLines are the Caddyfile lines of a rotation from the secret
// current: a new secret, and current as previous_secret until overlap
// from now.
func rotationLines(current string, overlap time.Duration, now time.Time) (string, error) {
	if current == "" {
		return "", errors.New("no current secret given: pass --secret or set CHECKOUT_SECRET to the site's secret")
	}
	if _, err := sign.ParseSecret(current); err != nil {
		return "", fmt.Errorf("current secret: %v", err)
	}
	if overlap < time.Minute {
		return "", fmt.Errorf("--overlap %s: give the shop at least a minute (a week is the default)", overlap)
	}
	until := now.Add(overlap).UTC().Truncate(time.Second).Format(time.RFC3339)
	return "secret " + sign.NewSecret() + "\nprevious_secret " + current + " until " + until + "\n", nil
}

func signLinkCommand() *cobra.Command {
	var base, secret, orderID, amount, currency, desc, prov, email string
	var valid time.Duration
	c := &cobra.Command{
		Use:   "sign-link",
		Short: "Print a signed payment link ({base}/start?...&sig=)",
		Long: "Print a signed payment link for intake signed_link. The secret is read from\n" +
			"--secret, or from the CHECKOUT_SECRET environment variable.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if secret == "" {
				secret = os.Getenv("CHECKOUT_SECRET")
			}
			if secret == "" {
				return errors.New("no secret given: pass --secret or set CHECKOUT_SECRET to the site's secret (make one with: caddy checkout secret)")
			}
			s, err := sign.ParseSecret(secret)
			if err != nil {
				return fmt.Errorf("secret: %v", err)
			}
			if orderID == "" || amount == "" || currency == "" {
				return errors.New("--order, --amount and --currency are required")
			}
			if err := order.ValidID(orderID); err != nil {
				return fmt.Errorf("--order: %v", err)
			}
			// The site checks the link's fields again; refuse here what it
			// would refuse, rather than print a link that cannot be paid.
			// A token symbol this build does not know (an erc20 provider's
			// own) has its decimals checked by the site only.
			switch _, err := money.Parse(amount, currency); {
			case errors.Is(err, money.ErrUnknownCurrency):
				if !tokenSymbol.MatchString(currency) {
					return fmt.Errorf("--currency %q: want a currency code or a token symbol, such as USD or 0xBTC", currency)
				}
				if !decimalAmount.MatchString(amount) || strings.Trim(amount, "0.") == "" {
					return fmt.Errorf("--amount %q: want a decimal number more than zero, such as 75.00", amount)
				}
			case err != nil:
				return fmt.Errorf("--amount: %v", err)
			}
			q := url.Values{"order": {orderID}, "amount": {amount}, "currency": {currency}}
			for k, v := range map[string]string{"description": desc, "provider": prov, "email": email} {
				if v != "" {
					q.Set(k, v)
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSuffix(base, "/")+"/start?"+s.SignLink(q, time.Now().Add(valid)))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&base, "base", "http://localhost/_checkout", "the site's public URL and base path")
	f.StringVar(&secret, "secret", "", "the site secret (default: $CHECKOUT_SECRET)")
	f.StringVar(&orderID, "order", "", "the shop's order id")
	f.StringVar(&amount, "amount", "", "amount in major units, such as 75.00")
	f.StringVar(&currency, "currency", "", "currency code or token symbol, such as USD")
	f.StringVar(&desc, "description", "", "what is being paid for")
	f.StringVar(&prov, "provider", "", "skip the choice: use this provider")
	f.StringVar(&email, "email", "", "the customer's e-mail address")
	f.DurationVar(&valid, "valid", 24*time.Hour, "how long the link works")
	return c
}

// What sign-link checks of an amount and a currency this build does not
// know (an erc20 provider's own token), the site checking the decimals.
var (
	tokenSymbol   = regexp.MustCompile(`^[A-Za-z0-9]{2,12}$`)
	decimalAmount = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// nextLink is the target of a Link header's rel="next", or "".
func nextLink(h string) string {
	for part := range strings.SplitSeq(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if ok && strings.Contains(params, `rel="next"`) && strings.HasPrefix(target, "<") && strings.HasSuffix(target, ">") {
			return strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")
		}
	}
	return ""
}

func ordersCommand() *cobra.Command {
	var admin, status string
	var limit int
	c := &cobra.Command{
		Use:   "orders",
		Short: "List orders through the running Caddy's admin API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if status != "" {
				q.Set("status", status)
			}
			next := "/checkout/orders?" + q.Encode()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-16s %-24s %-10s %s\n", "SITE", "ORDER", "STATUS", "AMOUNT")
			// Page by page, following the Link header's next page.
			for next != "" {
				resp, err := http.Get("http://" + admin + next)
				if err != nil {
					return fmt.Errorf("asking the admin API at %s: %v", admin, err)
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("admin API answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
				}
				var raw []map[string]any
				if err := json.Unmarshal(body, &raw); err != nil {
					return err
				}
				for _, o := range raw {
					amt, _ := o["amount"].(map[string]any)
					fmt.Fprintf(w, "%-16v %-24v %-10v %v %v\n", o["site"], o["order_id"], o["status"], amt["amount"], amt["currency"])
				}
				next = nextLink(resp.Header.Get("Link"))
			}
			return nil
		},
	}
	c.Flags().StringVar(&admin, "admin", "localhost:2019", "address of Caddy's admin API")
	c.Flags().StringVar(&status, "status", "", "only orders in this state")
	c.Flags().IntVar(&limit, "page", 100, "orders asked for at a time (1 to 10000); every page is listed")
	return c
}

func copyStoreCommand() *cobra.Command {
	var from, to string
	c := &cobra.Command{
		Use:   "copy-store",
		Short: "Copy a bbolt store into an empty PostgreSQL database (moving to several instances)",
		Long: "Copy every order with its history, the callback outbox, provider data, idempotency\n" +
			"records and spent tokens from a bbolt file into an empty PostgreSQL database, in one\n" +
			"transaction. Stop the Caddy that uses the file first (the file is locked while it runs).\n" +
			"The connection string is read from --to, or from CHECKOUT_DATABASE_URL.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				to = os.Getenv("CHECKOUT_DATABASE_URL")
			}
			n, err := CopyStore(cmd.Context(), from, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d orders, %d callbacks, %d provider records, %d idempotency keys, %d spent tokens\n",
				n.Orders, n.Deliveries, n.Data, n.Idempotency, n.Spent)
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "the bbolt file (default: the default store path)")
	c.Flags().StringVar(&to, "to", "", "the PostgreSQL connection string (default: $CHECKOUT_DATABASE_URL)")
	return c
}

// CopyStore copies the bbolt store at from into the empty PostgreSQL
// database at dsn. Errors never show the connection string's password.
func CopyStore(ctx context.Context, from, dsn string) (postgres.Counts, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if from == "" {
		from = DefaultStorePath()
	}
	if dsn == "" {
		return postgres.Counts{}, errors.New("--to: a PostgreSQL connection string is required (or set CHECKOUT_DATABASE_URL)")
	}
	if _, err := postgres.ParseDSN(dsn); err != nil {
		return postgres.Counts{}, fmt.Errorf("--to: %v", err)
	}
	if _, err := os.Stat(from); err != nil {
		return postgres.Counts{}, fmt.Errorf("--from: %v", err)
	}
	src, err := bolt.Open(from, bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return postgres.Counts{}, fmt.Errorf("--from: %v (is a Caddy using it still running?)", err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return postgres.Counts{}, fmt.Errorf("--to: %v", err)
	}
	defer dst.Close()
	n, err := dst.Import(ctx, src.Export)
	if err != nil {
		return postgres.Counts{}, fmt.Errorf("copying %s into %s: %v; nothing was written", from, dst.Name(), err)
	}
	return n, nil
}

// DemoCaddyfile is the config of `caddy checkout demo`; %s are the store
// path, the listen address, the host to bind, the secret and the shop's
// address (twice). It binds only the host it prints and persists nothing:
// with persist_config off, Caddy writes no autosave.json holding the
// secret.
const DemoCaddyfile = `{
	admin off
	persist_config off
	checkout {
		storage bolt %s
	}
}

http://%s {
	bind %s
	checkout {
		secret %s
		callback http://%s/payments/webhook
		success_url /orders/{order_id}/thanks
		cancel_url /cart
		price ` + demoshop.DownloadPath + ` ` + demoshop.DownloadPrice + ` USD "` + demoshop.DownloadName + `"
		sandbox
	}
	reverse_proxy %s
}
`

func demoCommand() *cobra.Command {
	var listen string
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run a demo shop behind Caddy with the sandbox provider",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return RunDemo(ctx, listen, cmd.OutOrStdout())
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "where the shop (through Caddy) listens")
	return c
}

// RunDemo runs the demo until ctx is done.
func RunDemo(ctx context.Context, listen string, out io.Writer) error {
	secret := sign.NewSecret()
	shop, err := demoshop.New(secret)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting the demo shop: %v", err)
	}
	srv := &http.Server{Handler: shop, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dir, err := os.MkdirTemp("", "caddy-checkout-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	shopAddr := ln.Addr().String()
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port, such as 127.0.0.1:8080", listen)
	}
	if host == "" {
		host = "127.0.0.1"
		listen = "127.0.0.1" + listen
	}
	cf := fmt.Sprintf(DemoCaddyfile, filepath.Join(dir, "checkout.db"), listen, host, secret, shopAddr, shopAddr)
	cfg, warns, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "demo"})
	if err != nil {
		return fmt.Errorf("adapting the demo config: %v", err)
	}
	for _, w := range warns {
		fmt.Fprintln(out, "warning:", w.Message)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("starting Caddy (is %s free? choose another with --listen): %v", listen, err)
	}
	defer func() { _ = caddy.Stop() }()
	fmt.Fprintf(out, "\ncaddy-checkout demo is running.\n\n  Open http://%s/ in your browser: Buy → Pay (sandbox) → back at the shop, marked paid.\n  A paid download, sold by one Caddyfile line: http://%s%s\n\nPress Ctrl-C to stop.\n", listen, listen, demoshop.DownloadPath)
	<-ctx.Done()
	return nil
}
