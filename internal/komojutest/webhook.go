// Events and their delivery to a webhook URL, signed as KOMOJU signs them:
// X-Komoju-Signature is the lowercase hex HMAC-SHA256 of the raw body under
// the webhook's secret token; X-Komoju-ID names the delivery.
package komojutest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

// Event is one event the fake emitted.
type Event struct {
	ID   string
	Type string // payment.captured, ...
	Body []byte // the JSON exactly as delivered
}

// Delivery is one attempt to deliver an event.
type Delivery struct {
	EventID    string
	DeliveryID string // X-Komoju-ID
	Type       string
	Status     int // the endpoint's status; 0 when none
	Err        error
}

// Sign is KOMOJU's X-Komoju-Signature of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// SetWebhook makes the fake deliver events to url signed with secret, and
// sends the ping KOMOJU sends when a webhook is created.
func (s *Server) SetWebhook(url, secret string) {
	s.mu.Lock()
	s.hook.url, s.hook.secret = url, secret
	n := len(s.events)
	s.emit("ping", map[string]any{})
	evs := append([]Event(nil), s.events[n:]...)
	s.mu.Unlock()
	s.send(evs)
}

// emit records an event; the caller delivers it once the lock is released.
func (s *Server) emit(typ string, data map[string]any) {
	ev := map[string]any{
		"id": newID(), "type": typ, "resource": "event", "data": data,
		"created_at": s.now().UTC().Format(time.RFC3339), "reason": nil,
	}
	body, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	s.events = append(s.events, Event{ID: ev["id"].(string), Type: typ, Body: body})
}

// Events lists every event emitted, in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Deliveries lists every delivery attempt, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// HoldWebhooks keeps events from being delivered until [Server.DeliverHeld]
// sends them, in the order the test chooses (KOMOJU does not promise
// delivery in order), or [Server.DropHeld] loses them.
func (s *Server) HoldWebhooks() {
	s.mu.Lock()
	s.holding = true
	s.mu.Unlock()
}

// Held lists the events held back.
func (s *Server) Held() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.held...)
}

// DeliverHeld delivers the held events with the given ids in that order
// (all of them, newest first, when none are given) and delivers later
// events at once again.
func (s *Server) DeliverHeld(ids ...string) {
	s.mu.Lock()
	held := s.held
	s.held, s.holding = nil, false
	s.mu.Unlock()
	var out []Event
	if len(ids) == 0 {
		for i := len(held) - 1; i >= 0; i-- {
			out = append(out, held[i])
		}
	}
	for _, id := range ids {
		for _, e := range held {
			if e.ID == id {
				out = append(out, e)
			}
		}
	}
	s.deliver(out)
}

// DropHeld loses the held events, as a webhook lost on the way, and
// delivers later events at once again.
func (s *Server) DropHeld() {
	s.mu.Lock()
	s.held, s.holding = nil, false
	s.mu.Unlock()
}

// Redeliver sends an emitted event again, as KOMOJU retries one (a new
// X-Komoju-ID, the same event).
func (s *Server) Redeliver(eventID string) Delivery {
	for _, e := range s.Events() {
		if e.ID == eventID {
			return s.deliver([]Event{e})[0]
		}
	}
	s.tb.Fatalf("komojutest: no event %s", eventID)
	return Delivery{}
}

func (s *Server) send(evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	if s.holding {
		s.held = append(s.held, evs...)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.deliver(evs)
}

// deliver posts events one at a time, in order.
func (s *Server) deliver(evs []Event) []Delivery {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	url, secret := s.hook.url, s.hook.secret
	s.mu.Unlock()
	var out []Delivery
	for _, e := range evs {
		if url == "" {
			continue
		}
		d := Delivery{EventID: e.ID, DeliveryID: newID(), Type: e.Type}
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(e.Body))
		if err != nil {
			s.tb.Errorf("komojutest: webhook URL %q: %v", url, err)
			return out
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Komoju-Webhook")
		req.Header.Set("X-Komoju-ID", d.DeliveryID)
		req.Header.Set("X-Komoju-Event", e.Type)
		req.Header.Set("X-Komoju-Signature", Sign(secret, e.Body))
		resp, err := s.client.Do(req)
		if err != nil {
			d.Err = err
		} else {
			d.Status = resp.StatusCode
			resp.Body.Close()
		}
		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.mu.Unlock()
		out = append(out, d)
	}
	return out
}
