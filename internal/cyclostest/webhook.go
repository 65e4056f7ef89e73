// The successWebhook call Cyclos makes, server to server, once a ticket is
// approved. The Cyclos documentation gives neither its method nor any retry
// policy, so the fake calls once, with the method of [WithWebhookMethod]
// and the ticket's parameters in the query string, and records the outcome.
package cyclostest

import (
	"io"
	"net/http"
)

// WebhookCall is one call of a ticket's successWebhook.
type WebhookCall struct {
	Ticket string // the ticket number
	URL    string // with orderId and ticketNumber appended
	Method string
	Status int   // the shop's response status; 0 if there was none
	Err    error // why no response arrived, if so
}

// startWebhook calls the webhook in the background, as Cyclos does while it
// answers the browser, so the webhook and the success redirect race.
// Callers hold s.mu.
func (s *Server) startWebhook(number, url string) {
	s.inflight++
	go s.deliver(number, url)
}

// deliver makes one webhook call; the caller has counted it in s.inflight.
func (s *Server) deliver(number, url string) {
	call := WebhookCall{Ticket: number, URL: url, Method: s.webhookMethod}
	req, err := http.NewRequest(s.webhookMethod, url, nil)
	if err == nil {
		var resp *http.Response
		resp, err = s.webhookClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			call.Status = resp.StatusCode
		}
	}
	call.Err = err
	s.mu.Lock()
	s.webhooks = append(s.webhooks, call)
	s.inflight--
	s.idle.Broadcast()
	s.mu.Unlock()
}

// WaitWebhooks waits until no webhook call is under way.
func (s *Server) WaitWebhooks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
}

// Webhooks lists the finished webhook calls, in the order they finished.
func (s *Server) Webhooks() []WebhookCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WebhookCall(nil), s.webhooks...)
}
