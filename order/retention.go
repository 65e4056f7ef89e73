// This file is retain_personal: which orders still hold their customer's
// data, and erasing it.

package order

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// PersonalSince is since when the order has been final with its
// customer's data still kept: the time of its last applied change, once
// it is no longer open; zero while it is open or once its data was
// erased. Stores index it (store.Store.Personal), so that retention
// passes cost what is due, however many orders are stored.
func (o *Order) PersonalSince() time.Time {
	if o.Status.Open() || !o.ErasedAt.IsZero() || slices.ContainsFunc(o.Disputes, Dispute.Open) {
		// An open dispute may need the customer's data as evidence; its
		// close is a change of its own, from which the time runs again.
		return time.Time{}
	}
	for i := len(o.History) - 1; i >= 0; i-- {
		if o.History[i].Applied {
			return o.History[i].At
		}
	}
	return o.UpdatedAt
}

// ErasePersonal erases the customer's data from a final order: the
// e-mail, the shop's metadata but the keys keep names (the plugin's own),
// and the attempts' provider data under the keys personal names (replaced
// by the value it gives, or removed when that is ""). It
// records what it erased (nothing, for an order without such data) and
// a line in the history, so that the order leaves the stores' index of
// personal data.
func (o *Order) ErasePersonal(keep func(key string) bool, personal func(key string) (string, bool), now time.Time) []string {
	var erased []string
	if o.Email != "" {
		o.Email = ""
		erased = append(erased, "email")
	}
	for _, k := range slices.Sorted(maps.Keys(o.Metadata)) {
		if keep == nil || !keep(k) {
			delete(o.Metadata, k)
			erased = append(erased, "metadata."+k)
		}
	}
	seen := map[string]bool{}
	for i := range o.Attempts {
		a := &o.Attempts[i]
		for _, k := range slices.Sorted(maps.Keys(a.ProviderData)) {
			if personal == nil {
				break
			}
			if blank, ok := personal(k); ok && a.ProviderData[k] != blank {
				if blank == "" {
					delete(a.ProviderData, k)
				} else {
					a.ProviderData[k] = blank
				}
				if !seen[k] {
					seen[k] = true
					erased = append(erased, "provider_data."+k)
				}
			}
		}
	}
	if len(o.IdempotencyKeys) > 0 {
		// The caller forgot the records (Retain).
		o.IdempotencyKeys = nil
		erased = append(erased, "idempotency_records")
	}
	o.Erased, o.ErasedAt, o.UpdatedAt = erased, now, now
	note := "customer data erased (retain_personal): nothing was kept"
	if len(erased) > 0 {
		note = "customer data erased (retain_personal): " + strings.Join(erased, ", ")
	}
	o.History = append(o.History, Event{At: now, From: o.Status, To: o.Status, Cause: Cause{Kind: ByRetention},
		Attempt: o.Current().Generation, Applied: true, Note: note})
	return erased
}

// MaxIdempotencyKeys bounds the idempotency records an order keeps track
// of (Order.IdempotencyKeys); the newest are kept.
const MaxIdempotencyKeys = 20

// noteKey records an idempotency record's key on the order; it reports
// whether the key is new.
func (o *Order) noteKey(key string) bool {
	if key == "" || slices.Contains(o.IdempotencyKeys, key) {
		return false
	}
	o.IdempotencyKeys = append(o.IdempotencyKeys, key)
	if n := len(o.IdempotencyKeys); n > MaxIdempotencyKeys {
		o.IdempotencyKeys = slices.Delete(o.IdempotencyKeys, 0, n-MaxIdempotencyKeys)
	}
	return true
}
