// Events and their delivery to a webhook endpoint, signed as Stripe signs
// them, so the code under test verifies real Stripe-Signature headers.
package stripetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Event is one event the fake emitted.
type Event struct {
	ID      string // evt_...
	Type    string // e.g. checkout.session.completed
	Account string // the connected account it happened in; "" for the platform
	// Body is the event JSON exactly as Stripe sends it to a webhook endpoint.
	Body []byte
}

// Delivery is one attempt to deliver an event to the webhook endpoint.
type Delivery struct {
	EventID   string
	Type      string
	URL       string
	Signature string // the Stripe-Signature header sent
	Status    int    // the endpoint's HTTP status; 0 when it gave none
	Err       error  // why no status was received
}

type eventRequest struct {
	ID             *string `json:"id"`
	IdempotencyKey *string `json:"idempotency_key"`
}

type eventJSON struct {
	ID              string       `json:"id"`
	Object          string       `json:"object"`
	Account         string       `json:"account,omitempty"`
	APIVersion      string       `json:"api_version"`
	Created         int64        `json:"created"`
	Data            eventData    `json:"data"`
	Livemode        bool         `json:"livemode"`
	PendingWebhooks int          `json:"pending_webhooks"`
	Request         eventRequest `json:"request"`
	Type            string       `json:"type"`
}

type eventData struct {
	Object any `json:"object"`
}

type webhookEndpoint struct {
	url     string
	secrets []string
}

// emitted is an event and the channel closed once its delivery (if any) is
// done.
type emitted struct {
	ev   Event
	done chan struct{}
}

func (e emitted) wait() {
	if e.done != nil {
		<-e.done
	}
}

// emitLocked records an event and queues its delivery. s.mu must be held, so
// events are delivered in the order they happened.
func (s *Server) emitLocked(typ, account string, object any, req eventRequest) emitted {
	pending := 0
	if s.webhook != nil {
		pending = 1
	}
	ev := Event{ID: newID("evt_", 24), Type: typ, Account: account}
	ev.Body = marshal(eventJSON{
		ID:              ev.ID,
		Object:          "event",
		Account:         account,
		APIVersion:      s.apiVersion,
		Created:         s.now().Unix(),
		Data:            eventData{Object: object},
		PendingWebhooks: pending,
		Request:         req,
		Type:            typ,
	})
	s.events = append(s.events, ev)
	e := emitted{ev: ev}
	if s.webhook != nil {
		e.done = s.outbox.push(&job{ev: ev, endpoint: *s.webhook})
	}
	return e
}

// Events lists every event emitted, in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, len(s.events))
	for i, ev := range s.events {
		ev.Body = bytes.Clone(ev.Body)
		out[i] = ev
	}
	return out
}

// SetWebhook sends every event emitted from now on to url, signed with each
// secret (Stripe signs with the old and the new secret while one is being
// rolled). An empty url stops deliveries.
//
// Events caused by a control method ([Server.Pay] and the others) are
// delivered before that method returns. Events caused by an API request are
// delivered after the response, as at Stripe; [Server.WaitDeliveries] waits
// for them. Deliveries go out one at a time, in order, so the webhook handler
// must not call a control method itself: that would wait for its own
// delivery to finish.
func (s *Server) SetWebhook(url string, secrets ...string) {
	s.tb.Helper()
	if url != "" && len(secrets) == 0 {
		s.tb.Fatal("stripetest: SetWebhook needs at least one signing secret (whsec_...)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if url == "" {
		s.webhook = nil
		return
	}
	s.webhook = &webhookEndpoint{url: url, secrets: append([]string(nil), secrets...)}
}

// Deliveries lists every delivery attempt, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// WaitDeliveries waits until every event emitted so far has been delivered.
func (s *Server) WaitDeliveries() { s.outbox.wait() }

// Resend delivers an event again, freshly signed, as Stripe does when it
// retries or when it delivers an event twice.
func (s *Server) Resend(eventID string) (Delivery, error) {
	s.mu.Lock()
	var ev *Event
	for i := range s.events {
		if s.events[i].ID == eventID {
			ev = &s.events[i]
		}
	}
	switch {
	case ev == nil:
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("stripetest: no event %q", eventID)
	case s.webhook == nil:
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("stripetest: no webhook endpoint set (SetWebhook)")
	}
	j := &job{ev: *ev, endpoint: *s.webhook}
	done := s.outbox.push(j)
	s.mu.Unlock()
	<-done
	return j.result, nil
}

// Sign returns a Stripe-Signature header value for body at time t, with one
// v1 signature per secret, made by stripe-go's own signing code.
func Sign(body []byte, t time.Time, secrets ...string) string {
	parts := []string{fmt.Sprintf("t=%d", t.Unix())}
	for _, secret := range secrets {
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: t})
		_, v1, _ := strings.Cut(signed.Header, ",")
		parts = append(parts, v1)
	}
	return strings.Join(parts, ",")
}

// webhookClient does not follow redirects: Stripe counts a 3xx answer as a
// failed delivery.
var webhookClient = &http.Client{
	Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func (s *Server) deliver(j *job) Delivery {
	sig := Sign(j.ev.Body, s.now(), j.endpoint.secrets...)
	d := Delivery{EventID: j.ev.ID, Type: j.ev.Type, URL: j.endpoint.url, Signature: sig}
	req, err := http.NewRequest(http.MethodPost, j.endpoint.url, bytes.NewReader(j.ev.Body))
	if err != nil {
		d.Err = err
		return d
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", sig)
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Accept", "*/*; q=0.5, application/xml")
	resp, err := webhookClient.Do(req)
	if err != nil {
		d.Err = err
		return d
	}
	resp.Body.Close()
	d.Status = resp.StatusCode
	return d
}

// job is one queued delivery; result is set before done is closed.
type job struct {
	ev       Event
	endpoint webhookEndpoint
	done     chan struct{}
	result   Delivery
}

// outbox delivers queued events one at a time, in order, on its own
// goroutine, so an API handler never waits for the code under test's webhook
// handler (which may itself be waiting for that API response).
type outbox struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   []*job
	busy    bool
	closed  bool
	stopped chan struct{}
}

func (o *outbox) start(s *Server) {
	o.cond.L = &o.mu
	o.stopped = make(chan struct{})
	go func() {
		defer close(o.stopped)
		for {
			o.mu.Lock()
			for len(o.queue) == 0 && !o.closed {
				o.cond.Wait()
			}
			if len(o.queue) == 0 {
				o.mu.Unlock()
				return
			}
			j := o.queue[0]
			o.queue = o.queue[1:]
			o.busy = true
			o.mu.Unlock()

			j.result = s.deliver(j)
			s.mu.Lock()
			s.deliveries = append(s.deliveries, j.result)
			s.mu.Unlock()
			close(j.done)

			o.mu.Lock()
			o.busy = false
			o.cond.Broadcast()
			o.mu.Unlock()
		}
	}()
}

func (o *outbox) push(j *job) chan struct{} {
	j.done = make(chan struct{})
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queue = append(o.queue, j)
	o.cond.Broadcast()
	return j.done
}

func (o *outbox) wait() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.queue) > 0 || o.busy {
		o.cond.Wait()
	}
}

// stop delivers what is queued, then ends the goroutine.
func (o *outbox) stop() {
	o.mu.Lock()
	o.closed = true
	o.cond.Broadcast()
	o.mu.Unlock()
	<-o.stopped
}

// newUUID makes a version 4 UUID, the form of the idempotency key Stripe's
// dashboard sends with its own requests.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
