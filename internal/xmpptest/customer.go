// A Voucher-Safe client stand-in for tests: a customer's session on the
// test server that collects the order messages it receives.
package xmpptest

import (
	"context"
	"encoding/xml"
	"net"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/caddy-checkout/checkout/providers/vouchersafe"
)

// Customer is a customer's client, logged in and available.
type Customer struct {
	JID  jid.JID // full, with the resource the server gave
	msgs chan vouchersafe.OrderMessage
}

// Connect registers user on the server, logs it in (STARTTLS, SCRAM) and
// collects the order messages it receives; it logs out when the test ends.
func (s *Server) Connect(t testing.TB, user string) *Customer {
	t.Helper()
	addr := s.Register(user, "customer-password-1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := xmpp.NewClientSession(ctx, jid.MustParse(addr), conn,
		xmpp.StartTLS(s.TLSConfig()), xmpp.SASL("", "customer-password-1", sasl.ScramSha1), xmpp.BindResource())
	if err != nil {
		t.Fatalf("customer login: %v", err)
	}
	c := &Customer{JID: sess.LocalAddr(), msgs: make(chan vouchersafe.OrderMessage, 10)}
	if err := sess.Send(ctx, stanza.Presence{Type: stanza.AvailablePresence}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	go sess.Serve(xmpp.HandlerFunc(func(tr xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "message" {
			return nil
		}
		if m, err := vouchersafe.Receive(tr, start); err == nil {
			c.msgs <- m
		}
		return nil
	}))
	t.Cleanup(func() { sess.Close(); sess.Conn().Close() })
	return c
}

// Next is the next order message the client receives.
func (c *Customer) Next(t testing.TB) vouchersafe.OrderMessage {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no order message reached the customer's client")
		return vouchersafe.OrderMessage{}
	}
}
