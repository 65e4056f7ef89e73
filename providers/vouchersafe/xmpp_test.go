package vouchersafe_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/xmpptest"
	"github.com/caddy-checkout/checkout/providers/vouchersafe"
)

// customer is a Voucher-Safe client stand-in: a session that collects the
// order messages it receives.
type customer struct {
	JID  jid.JID // full, with the resource the server gave
	msgs chan vouchersafe.OrderMessage
	sess *xmpp.Session
}

func connectCustomer(t *testing.T, srv *xmpptest.Server, user string) *customer {
	t.Helper()
	addr := srv.Register(user, "customer-password-1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := xmpp.NewClientSession(ctx, jid.MustParse(addr), conn,
		xmpp.StartTLS(srv.TLSConfig()), xmpp.SASL("", "customer-password-1", sasl.ScramSha1), xmpp.BindResource())
	if err != nil {
		t.Fatalf("customer login: %v", err)
	}
	c := &customer{JID: sess.LocalAddr(), msgs: make(chan vouchersafe.OrderMessage, 10), sess: sess}
	if err := sess.Send(ctx, stanza.Presence{Type: stanza.AvailablePresence}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	go sess.Serve(xmpp.HandlerFunc(func(tr xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "message" {
			return nil
		}
		m, err := vouchersafe.Receive(tr, start)
		if err == nil {
			c.msgs <- m
		}
		return nil
	}))
	t.Cleanup(func() { sess.Close(); sess.Conn().Close() })
	return c
}

func (c *customer) next(t *testing.T) vouchersafe.OrderMessage {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no order message reached the customer's client")
		return vouchersafe.OrderMessage{}
	}
}

func startBot(t *testing.T, srv *xmpptest.Server, tlsConfig *tls.Config) *vouchersafe.Bot {
	return startBotLogged(t, srv, tlsConfig, nil)
}

func startBotLogged(t *testing.T, srv *xmpptest.Server, tlsConfig *tls.Config, log *zap.Logger) *vouchersafe.Bot {
	t.Helper()
	bot := &vouchersafe.Bot{JID: jid.MustParse(srv.Register("webbot", "bot-password-1")), Password: "bot-password-1", Addr: srv.Addr, TLS: tlsConfig, Logger: log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bot.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return bot
}

func orderMessage(to jid.JID, code string, t *testing.T) vouchersafe.OrderMessage {
	data, err := vouchersafe.Encrypt(vouchersafe.OrderInfo{Payee: "merchant-1@vouchi.com", Amount: "19.95", Currency: "CAD",
		Issuer: "VI-USV", Subject: "Your order #A-1 from shop", Baggage: map[string]string{"orderId": "ref1"}}, code)
	if err != nil {
		t.Fatal(err)
	}
	m := vouchersafe.OrderMessage{Message: stanza.Message{To: to, Type: stanza.NormalMessage, ID: "m1"},
		Subject: "Your order #A-1 from shop", Body: "Open this message in your Voucher-Safe client; the code is on the shop's page."}
	m.SetData(data)
	return m
}

func TestBotSendsOrderMessagesOverProsody(t *testing.T) {
	srv := xmpptest.Start(t)
	buyer := connectCustomer(t, srv, "buyer")
	bot := startBot(t, srv, srv.TLSConfig())
	code, _ := vouchersafe.NewSecret(12)
	ctx := context.Background()
	if err := bot.Send(ctx, orderMessage(buyer.JID, code, t), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	m := buyer.next(t)
	info, err := vouchersafe.Decrypt(m.Data(), code)
	if err != nil || m.Subject != "Your order #A-1 from shop" || info.Amount != "19.95" || info.Baggage["orderId"] != "ref1" {
		t.Fatalf("received %+v, decrypted %+v %v", m, info, err)
	}

	// The server restarts: the bot logs in again by itself, and the next
	// order goes out.
	srv.Restart()
	buyer = connectCustomer(t, srv, "buyer2")
	if err := bot.Send(ctx, orderMessage(buyer.JID, code, t), 30*time.Second); err != nil {
		t.Fatalf("send after the server restarted: %v", err)
	}
	if m := buyer.next(t); m.Data() == "" {
		t.Fatal("empty order message after the restart")
	}
}

func TestBotWithAnUntrustedCertificate(t *testing.T) {
	srv := xmpptest.Start(t)
	buyer := connectCustomer(t, srv, "buyer")
	var logs bytes.Buffer
	var mu sync.Mutex
	bot := startBotLogged(t, srv, &tls.Config{ServerName: xmpptest.Domain, MinVersion: tls.VersionTLS12}, handlerstest.BufferLogger(&logs, &mu)) // system CAs only
	err := bot.Send(context.Background(), orderMessage(buyer.JID, "0123456789ab", t), 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("send through a server whose certificate is not trusted: %v", err)
	}
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	// The operator's log says why: the certificate, and not the password.
	if !strings.Contains(logged, "certificate signed by unknown authority") || strings.Contains(logged, "bot-password-1") {
		t.Fatalf("log of a login refused for its certificate:\n%s", logged)
	}
}
