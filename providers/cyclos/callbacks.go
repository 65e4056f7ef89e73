// What Cyclos and the customer send back: the success webhook (server to
// server, GET or POST) and the success redirect, both with orderId and
// ticketNumber in the query; the cancel redirect; and the reconciler's
// question. None of them is trusted: the ticket is looked up with our own
// credentials and, once approved, processed by us.
package cyclos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/templates"
)

// callbackParams reads orderId and ticketNumber from the query, or from a
// form body when the query has none.
func callbackParams(r *http.Request, body []byte) (ref, ticket string) {
	q := r.URL.Query()
	if q.Get("ticketNumber") == "" && len(body) > 0 {
		if form, err := url.ParseQuery(string(body)); err == nil {
			q = form
		}
	}
	return q.Get("orderId"), q.Get("ticketNumber")
}

// Webhook handles Cyclos's success webhook. An unknown ticket, one not
// made for the attempt the orderId names, or one still open changes
// nothing (answered 200: Cyclos has nothing to retry).
func (c *Cyclos) Webhook(ctx context.Context, r *http.Request, body []byte) ([]provider.Finding, error) {
	ref, ticket := callbackParams(r, body)
	if ref == "" || ticket == "" {
		return nil, fmt.Errorf("%w: Cyclos webhook without orderId and ticketNumber", provider.ErrMalformed)
	}
	_, p, err := c.env.Lookup(ctx, ref)
	if err != nil || p.ProviderRef != ticket {
		return nil, nil
	}
	f, err := c.examine(ctx, p)
	if err != nil || f.Status == "" {
		return nil, err
	}
	return []provider.Finding{f}, nil
}

// Return handles the customer's success redirect: the ticket named must
// be the attempt's.
func (c *Cyclos) Return(ctx context.Context, r *http.Request, p provider.Payment) (provider.Finding, error) {
	ref, ticket := callbackParams(r, nil)
	if (ref != "" && ref != p.Ref) || (ticket != "" && ticket != p.ProviderRef) {
		return provider.Finding{}, fmt.Errorf("%w: the ticket is not this payment's", provider.ErrMalformed)
	}
	if p.ProviderRef == "" {
		return provider.Finding{}, nil
	}
	return c.examine(ctx, p)
}

// Check asks Cyclos about the attempt's ticket, for the reconciler: an
// approved ticket whose callbacks were lost is processed; one that expired
// or that an administrator cancelled ends the attempt.
func (c *Cyclos) Check(ctx context.Context, p provider.Payment) (provider.Finding, error) {
	if p.ProviderRef == "" {
		return provider.Finding{}, nil
	}
	return c.examine(ctx, p)
}

// examine reads the attempt's ticket and reports its state, processing it
// when it is approved.
func (c *Cyclos) examine(ctx context.Context, p provider.Payment) (provider.Finding, error) {
	t, err := c.client.view(ctx, p.ProviderRef)
	if isNotFound(err) {
		return provider.Finding{}, nil
	}
	if err != nil {
		return provider.Finding{}, err
	}
	f := provider.Finding{Ref: p.Ref, ProviderRef: p.ProviderRef}
	switch t.TicketStatus {
	case statusApproved, statusProcessed:
		f, err := c.settle(ctx, p, p.ProviderRef)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && (ae.Kind == "payment" || paymentMessages[ae.Code] != ""):
			// Approved, but Cyclos refused the payment itself (the
			// payer's balance or limits changed since).
			return provider.Finding{Ref: p.Ref, ProviderRef: p.ProviderRef, EventID: "ticket-refused:" + p.ProviderRef,
				Status: order.Failed, Note: "Cyclos refused the payment: " + ae.Code}, nil
		case errors.As(err, &ae) && (ae.Status == http.StatusUnprocessableEntity || ae.Code == "illegalAction"):
			// The ticket changed between the view and the process call
			// (it expired, or it is not for this orderId): nothing to
			// report now; the reconciler looks again.
			return provider.Finding{}, nil
		}
		return f, err
	case statusExpired:
		f.Status, f.EventID, f.Note = order.Expired, "ticket-expired:"+p.ProviderRef, "the Cyclos ticket expired"
	case statusCanceled:
		f.Status, f.EventID, f.Note = order.Cancelled, "ticket-canceled:"+p.ProviderRef, "the Cyclos ticket was cancelled"
	}
	return f, nil
}

// Close cancels the attempt's ticket while it is still open, so that it
// can no longer be approved.
func (c *Cyclos) Close(ctx context.Context, p provider.Payment) error {
	if p.ProviderRef == "" {
		return nil
	}
	t, err := c.client.view(ctx, p.ProviderRef)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.TicketStatus != statusOpen {
		return nil
	}
	return c.client.cancel(ctx, p.ProviderRef)
}

// ServeHTTP serves {base}/cyclos/cancel/{ref}, the ticket's cancelUrl: a
// customer who cancels at Cyclos. The ticket is checked: an open one is
// cancelled and the order with it; one approved meanwhile is processed
// as a payment.
func (c *Cyclos) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref, ok := strings.CutPrefix(r.URL.Path, "/cancel/")
	if !ok || ref == "" || strings.Contains(ref, "/") || r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	o, p, err := c.env.Lookup(r.Context(), ref)
	if err != nil {
		c.env.Render(w, r, http.StatusNotFound, "error", templates.Page{MessageKey: "error.not_found"})
		return
	}
	payPage := c.env.BasePath + "/pay/" + ref
	if _, ticket := callbackParams(r, nil); ticket != "" && ticket != p.ProviderRef {
		c.env.Render(w, r, http.StatusBadRequest, "error", templates.Page{MessageKey: "error.return_mismatch", RetryURL: payPage})
		return
	}
	if !o.Status.Open() || p.ProviderRef == "" || o.Current().Ref != ref {
		http.Redirect(w, r, payPage, http.StatusSeeOther)
		return
	}
	t, err := c.client.view(r.Context(), p.ProviderRef)
	if err == nil && t.TicketStatus == statusOpen {
		err = c.client.cancel(r.Context(), p.ProviderRef)
		if err == nil {
			_, err = c.env.Report(r.Context(), order.ByCustomer, provider.Finding{Ref: ref, ProviderRef: p.ProviderRef,
				EventID: "ticket-canceled:" + p.ProviderRef, Status: order.Cancelled, Note: "cancelled by the customer at Cyclos"})
		}
	} else if err == nil {
		var f provider.Finding
		if f, err = c.examine(r.Context(), p); err == nil && f.Status != "" {
			_, err = c.env.Report(r.Context(), order.ByReturn, f)
		}
	}
	if err != nil {
		c.env.Render(w, r, http.StatusServiceUnavailable, "error", templates.Page{MessageKey: "error.provider_unreachable", RetryURL: payPage})
		return
	}
	http.Redirect(w, r, payPage, http.StatusSeeOther)
}
