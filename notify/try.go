// This file is one try of one delivery: sign and POST it, read what the
// shop answered, and record the outcome in the store.

package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/caddy-checkout/checkout/store"
)

// maxDrain is how much of a shop's answer is read. Reading (rather than
// closing at once) lets the connection be reused; the limit keeps a shop
// that streams an endless body from holding the worker.
const maxDrain = 64 << 10

// errSiteGone is the LastError of a delivery whose site was removed from
// the config. It is retried: the site may come back with the next reload.
var errSiteGone = errors.New("site no longer configured")

// answer is what one POST came to.
type answer struct {
	status     int           // 0 when there was no answer
	retryAfter time.Duration // the shop's Retry-After on 429/503, else 0
	err        error         // why there was no answer
}

// attempt tries the delivery with this id once, if it is still pending and
// due, and saves the outcome. The caller has claimed id.
//
// The delivery is read again here, after the claim, rather than taken from
// the Due list: a try of the same delivery may have finished between Due
// and the claim, and trying its stale copy would send it twice.
//
// When ctx is cancelled during the POST, nothing is saved: the delivery
// stays pending and due, and is tried again (at least once). The returned
// error is a store failure; the try's own outcome is recorded, not
// returned.
func (n *Notifier) attempt(ctx context.Context, id string) error {
	d, err := n.store.Delivery(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("reading delivery %s: %w", id, err)
	}
	start := n.now()
	if d.State != store.DeliveryPending || d.NextAt.After(start) {
		return nil
	}

	was := *d
	a := n.post(ctx, d, start)
	if a.err != nil && ctx.Err() != nil {
		n.log.Debug("callback try interrupted; it stays pending",
			slog.String("delivery", d.ID), slog.String("site", d.Site), slog.String("order", d.OrderID))
		return nil
	}
	n.record(d, a, start, n.now())
	// Saved even when ctx is cancelled just now: the shop has the
	// callback, and forgetting that would only send it again. Where the
	// store is shared, only over the version this try started from: if
	// another instance tried it meanwhile (this try outlived its claim),
	// its record stands.
	if sw, ok := n.store.(store.DeliverySwapper); ok {
		err = sw.SaveDeliveryIf(context.WithoutCancel(ctx), d, &was)
	} else {
		err = n.store.SaveDelivery(context.WithoutCancel(ctx), d)
	}
	if errors.Is(err, store.ErrStale) {
		n.log.Warn("another instance recorded a try of this callback first; this try's outcome is not saved",
			slog.String("delivery", d.ID), slog.String("site", d.Site), slog.String("order", d.OrderID))
		return nil
	}
	if err != nil {
		// Unsaved, the delivery stays due as it was: the shop may get
		// this callback again, which its webhook-id dedupe absorbs.
		return fmt.Errorf("saving the outcome of delivery %s (it will be sent again): %w", d.ID, err)
	}
	n.report(d)
	return nil
}

// post signs d with its site's current secret and sends it.
func (n *Notifier) post(ctx context.Context, d *store.Delivery, now time.Time) answer {
	secret, ok := n.sites(d.Site)
	if !ok || secret.IsZero() {
		return answer{err: errSiteGone}
	}
	if n.tryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.tryTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		// Not err itself: url.Parse errors quote the URL.
		return answer{err: errors.New("callback URL is not valid")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-checkout")
	// Fresh timestamp and signature on every try (the shop checks the
	// timestamp against a 5 min window); the id never changes.
	secret.SetWebhookHeaders(req.Header, d.ID, now, d.Body)

	resp, err := n.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()

	a := answer{status: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), n.now()); ok {
			a.retryAfter = ra
		}
	}
	return a
}

// record applies a try's answer to d: the try started at start and ended
// at end.
func (n *Notifier) record(d *store.Delivery, a answer, start, end time.Time) {
	d.LastAt = start
	d.LastStatus = a.status
	d.Tries++ // every try counts, the one that delivered too
	switch {
	case a.err == nil && a.status >= 200 && a.status < 300:
		d.State = store.DeliveryDelivered
		d.LastError = ""
		return
	case a.err == nil && a.status == http.StatusGone:
		// Standard Webhooks: 410 means "stop sending". Only this
		// delivery stops; the operator can redeliver it.
		d.State = store.DeliveryGone
		d.LastError = statusError(a.status)
		return
	case a.err == nil:
		d.LastError = statusError(a.status)
	default:
		d.LastError = errorText(a.err, d.URL)
	}
	next, dead := nextTry(d.Tries, end, d.RetryFrom, n.Horizon(), a.retryAfter, n.rand())
	if dead {
		d.State = store.DeliveryDead
		return
	}
	d.NextAt = next
}

// report counts and logs a recorded outcome.
func (n *Notifier) report(d *store.Delivery) {
	attrs := []any{
		slog.String("delivery", d.ID),
		slog.String("site", d.Site),
		slog.String("order", d.OrderID),
		slog.String("type", d.Type),
		slog.Int("status", d.LastStatus),
	}
	switch d.State {
	case store.DeliveryDelivered:
		n.stats.delivered.Add(1)
		n.log.Info("callback delivered", attrs...)
	case store.DeliveryGone:
		n.stats.gone.Add(1)
		n.log.Warn("shop answered 410 Gone: callback stopped; redeliver it once the shop accepts it again", attrs...)
	case store.DeliveryDead:
		n.stats.failed.Add(1)
		n.stats.deadLettered(d.Site)
		n.log.Error("callback dead-lettered: the shop did not accept it within the retry horizon; redeliver it once the shop is fixed",
			append(attrs, slog.Int("try", d.Tries), slog.String("error", d.LastError))...)
	default:
		n.stats.failed.Add(1)
		n.log.Warn("callback try failed; will retry",
			append(attrs, slog.Int("try", d.Tries), slog.Time("next", d.NextAt), slog.String("error", d.LastError))...)
	}
}
