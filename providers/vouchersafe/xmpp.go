// The bot: the provider's own XMPP session, over which order messages go
// to customers' clients. It is kept open by the provider's background work
// and reconnects with backoff; a send while it is down waits a little,
// then fails so that the customer can retry. STARTTLS is required and the
// login is SCRAM (mellium.im/sasl); the server assigns the resource, so
// several Caddy instances sharing one bot account never log each other out.
package vouchersafe

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// orderElement is <x xmlns="jabber:message:voucher-safe#web-vsc">.
type orderElement struct {
	XMLName xml.Name `xml:"jabber:message:voucher-safe#web-vsc x"`
	Data    string   `xml:",chardata"`
}

// OrderMessage is the order message of SPEC §5.1.
type OrderMessage struct {
	stanza.Message
	Subject string        `xml:"subject"`
	Body    string        `xml:"body"`
	Order   *orderElement `xml:"jabber:message:voucher-safe#web-vsc x"`
}

// SetData sets the message's encrypted order info.
func (m *OrderMessage) SetData(data string) { m.Order = &orderElement{Data: data} }

// Data is the message's encrypted order info, or "".
func (m OrderMessage) Data() string {
	if m.Order == nil {
		return ""
	}
	return m.Order.Data
}

// Bot is an XMPP client session kept open for sending order messages.
type Bot struct {
	JID      jid.JID
	Password string
	Addr     string      // host:port to dial
	TLS      *tls.Config // ServerName and the CAs to trust
	Logger   *zap.Logger

	mu    sync.Mutex
	sess  *xmpp.Session
	ready chan struct{} // closed while a session is up
}

// backoff bounds for reconnecting.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Run keeps a session open until ctx ends.
func (b *Bot) Run(ctx context.Context) error {
	wait := minBackoff
	for ctx.Err() == nil {
		sess, err := b.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			b.log().Warn("voucher-safe bot: cannot log in to the XMPP server; retrying",
				zap.String("jid", b.JID.Bare().String()), zap.String("server", b.Addr), zap.Duration("in", wait), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(wait*2, maxBackoff)
			continue
		}
		wait = minBackoff
		b.setSession(sess)
		served := make(chan error, 1)
		go func() { served <- sess.Serve(xmpp.HandlerFunc(ignore)) }()
		select {
		case <-ctx.Done():
			b.setSession(nil)
			sess.Close()
			sess.Conn().Close()
			<-served
		case err := <-served:
			b.setSession(nil)
			sess.Conn().Close()
			if ctx.Err() == nil {
				b.log().Warn("voucher-safe bot: XMPP session ended; reconnecting", zap.Error(err))
			}
		}
	}
	return nil
}

// ignore answers nothing: the bot only sends.
func ignore(t xmlstream.TokenReadEncoder, start *xml.StartElement) error { return nil }

func (b *Bot) log() *zap.Logger {
	if b.Logger == nil {
		return zap.NewNop()
	}
	return b.Logger
}

// connect dials the server and logs in: STARTTLS (required), SCRAM, and a
// resource the server chooses.
func (b *Bot) connect(ctx context.Context) (*xmpp.Session, error) {
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", b.Addr)
	if err != nil {
		return nil, err
	}
	sess, err := xmpp.NewClientSession(dctx, b.JID, conn,
		xmpp.StartTLS(b.TLS),
		xmpp.SASL("", b.Password, sasl.ScramSha256Plus, sasl.ScramSha256, sasl.ScramSha1Plus, sasl.ScramSha1),
		xmpp.BindResource(),
	)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return sess, nil
}

func (b *Bot) setSession(s *xmpp.Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready == nil {
		b.ready = make(chan struct{})
	}
	b.sess = s
	if s != nil {
		close(b.ready)
	} else {
		select {
		case <-b.ready:
			b.ready = make(chan struct{})
		default:
		}
	}
}

// ErrBotDown is a send while the bot has no session: the customer is told
// to try again in a moment.
var ErrBotDown = errors.New("the XMPP server cannot be reached now")

// Send sends an order message, waiting up to wait for a session.
func (b *Bot) Send(ctx context.Context, m OrderMessage, wait time.Duration) error {
	deadline := time.After(wait)
	for {
		b.mu.Lock()
		if b.ready == nil {
			b.ready = make(chan struct{})
		}
		sess, ready := b.sess, b.ready
		b.mu.Unlock()
		if sess != nil {
			if err := sess.Encode(ctx, m); err != nil {
				return fmt.Errorf("%w: sending: %v", ErrBotDown, err)
			}
			return nil
		}
		select {
		case <-ready:
		case <-deadline:
			return ErrBotDown
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Receive decodes a message received by a client (for tests and for
// clients written against the wire format): mellium's token stream needs
// the start element put back in front (see protocols.md §5.4).
func Receive(t xmlstream.TokenReadEncoder, start *xml.StartElement) (OrderMessage, error) {
	var m OrderMessage
	err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&m)
	if err == io.EOF {
		err = nil
	}
	return m, err
}
