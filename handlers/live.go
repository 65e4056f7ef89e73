// Live status for the customer's pages: GET {base}/status/{ref} answers
// JSON, GET {base}/events/{ref} streams Server-Sent Events. Both are an
// enhancement: every page also works by reloading.
package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// hub tells live pages of this process that an order moved. Pages of
// orders moved by another instance notice within a poll interval.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
	open int // streams open in all
}

// Bounds on open live pages (event streams), so that a script opening
// thousands cannot exhaust the server: a customer has a tab or a few per
// payment, and a site's streams together are limited. A page refused a
// stream polls the JSON status instead.
const (
	maxStreamsPerRef = 20
	maxStreams       = 10_000
)

func newHub() *hub { return &hub{subs: map[string]map[chan struct{}]struct{}{}} }

// subscribe registers a live page of ref; ok is false when ref or the
// site already has as many as they may.
func (h *hub) subscribe(ref string) (ch chan struct{}, cancel func(), ok bool) {
	ch = make(chan struct{}, 1)
	h.mu.Lock()
	if len(h.subs[ref]) >= maxStreamsPerRef || h.open >= maxStreams {
		h.mu.Unlock()
		return nil, nil, false
	}
	if h.subs[ref] == nil {
		h.subs[ref] = map[chan struct{}]struct{}{}
	}
	h.subs[ref][ch] = struct{}{}
	h.open++
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[ref], ch)
		if len(h.subs[ref]) == 0 {
			delete(h.subs, ref)
		}
		h.open--
		h.mu.Unlock()
	}, true
}

func (h *hub) publish(o *order.Order) {
	refs := make([]string, len(o.Attempts))
	for i, a := range o.Attempts {
		refs[i] = a.Ref
	}
	h.publishRefs(refs)
}

// publishRefs wakes the pages of these attempts; nil wakes every page.
func (h *hub) publishRefs(refs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wake := func(subs map[chan struct{}]struct{}) {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	if refs == nil {
		for _, subs := range h.subs {
			wake(subs)
		}
		return
	}
	for _, ref := range refs {
		wake(h.subs[ref])
	}
}

// Changed tells the site's live pages that the order with these attempt
// references moved, in this instance or another sharing the store (nil:
// any order may have moved). Each open page reads its order again.
func (s *Site) Changed(refs []string) {
	if refs == nil {
		s.receipts.reset()
	}
	s.receipts.forget(nil, refs)
	s.hub.publishRefs(refs)
}

// changed is told of every state change this instance makes.
func (s *Site) changed(o *order.Order) {
	s.receipts.forget([]string{o.ID}, nil)
	s.hub.publish(o)
}

// statusView is the public status of an attempt: nothing about the
// customer, nothing secret.
type statusView struct {
	Status    order.State `json:"status"`
	Amount    string      `json:"amount"`
	Currency  string      `json:"currency"`
	Received  string      `json:"received,omitempty"`
	ExpiresAt time.Time   `json:"expires_at"`
	Current   bool        `json:"current"` // false once a newer amount replaced this attempt's
	Late      bool        `json:"late,omitempty"`
	// AttemptFailed: the provider declined this attempt; the order stays
	// payable through a new one (the pay page offers it).
	AttemptFailed bool `json:"attempt_failed,omitempty"`
	// Progress is the provider's word on an open attempt ("seen, 3 of
	// 12 confirmations"), where it has one.
	Progress string `json:"progress,omitempty"`
}

func (s *Site) viewOf(o *order.Order, ref string) statusView {
	a := o.Attempt(ref)
	v := statusView{Status: o.Status, Amount: a.Amount.String(), Currency: a.Amount.Currency(),
		ExpiresAt: o.Deadline().UTC(), Current: a.Generation == o.Current().Generation, Late: o.Late, AttemptFailed: a.Failed}
	if a.Received.Valid() {
		v.Received = a.Received.String()
	}
	if pr, ok := s.providers[a.Provider].(provider.Progresser); ok && o.Status.Open() {
		v.Progress = pr.Progress(ref).Text
	}
	return v
}

func (s *Site) serveStatus(w http.ResponseWriter, r *http.Request, ref string) {
	o, ok := s.orderByRef(w, r, ref, true)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.viewOf(o, ref))
}

// ssePoll is how often an open event stream re-reads the store, for
// changes made by another instance.
const ssePoll = 5 * time.Second

func (s *Site) serveEvents(w http.ResponseWriter, r *http.Request, ref string) {
	o, ok := s.orderByRef(w, r, ref, true)
	if !ok {
		return
	}
	ch, cancel, ok := s.hub.subscribe(ref)
	if !ok {
		w.Header().Set("Retry-After", "10")
		writeAPIError(w, http.StatusServiceUnavailable, "too many live pages are open; poll the status URL instead")
		return
	}
	defer cancel()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(v statusView) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	last := s.viewOf(o, ref)
	if !send(last) {
		return
	}
	poll := time.NewTicker(ssePoll)
	defer poll.Stop()
	deadline := time.NewTimer(10 * time.Minute) // the page reconnects if still open
	defer deadline.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-deadline.C:
			return
		case <-ch:
		case <-poll.C:
		}
		cur, err := s.cfg.Store.ByRef(r.Context(), ref)
		if err != nil {
			return
		}
		if v := s.viewOf(cur, ref); v != last {
			last = v
			if !send(v) {
				return
			}
		} else if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError is the JSON body of every API error.
type apiError struct {
	Error string `json:"error"`
}

func writeAPIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}
