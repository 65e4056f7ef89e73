package vouchersafe_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/xmpptest"
	"github.com/caddy-checkout/checkout/providers/vouchersafe"
)

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
	buyer := srv.Connect(t, "buyer")
	bot := startBot(t, srv, srv.TLSConfig())
	code, _ := vouchersafe.NewSecret(12)
	ctx := context.Background()
	if err := bot.Send(ctx, orderMessage(buyer.JID, code, t), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	m := buyer.Next(t)
	info, err := vouchersafe.Decrypt(m.Data(), code)
	if err != nil || m.Subject != "Your order #A-1 from shop" || info.Amount != "19.95" || info.Baggage["orderId"] != "ref1" {
		t.Fatalf("received %+v, decrypted %+v %v", m, info, err)
	}

	// The server restarts: the bot logs in again by itself, and the next
	// order goes out.
	srv.Restart()
	buyer = srv.Connect(t, "buyer2")
	if err := bot.Send(ctx, orderMessage(buyer.JID, code, t), 30*time.Second); err != nil {
		t.Fatalf("send after the server restarted: %v", err)
	}
	if m := buyer.Next(t); m.Data() == "" {
		t.Fatal("empty order message after the restart")
	}
}

func TestBotWithAnUntrustedCertificate(t *testing.T) {
	srv := xmpptest.Start(t)
	buyer := srv.Connect(t, "buyer")
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
