// The memory of receipts found valid: a receipt that opens its path many
// times a second costs the store one read a second, not one per request.
package handlers

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-checkout/checkout/order"
)

const (
	// receiptFresh is how long a receipt found valid is believed without
	// asking the store again. A refund made through any instance sharing
	// the store revokes it at once (the change feed forgets it); this
	// bounds how long a change the feed missed, or a store that has just
	// become unreadable, goes unnoticed.
	receiptFresh = time.Second
	// maxCachedReceipts bounds the memory: past it the cache starts over.
	maxCachedReceipts = 10_000
)

// receiptCache is safe for concurrent use.
type receiptCache struct {
	mu    sync.RWMutex
	byTok map[string]*receiptEntry
	byRef map[string]string              // attempt ref → order id, of the orders cached
	byID  map[string]map[string]struct{} // order id → its receipts cached
	// epoch counts forgettings: an answer read from the store before one
	// is not cached after it, since it may be what was just forgotten.
	epoch atomic.Uint64
}

type receiptEntry struct {
	o     *order.Order // the paid order, as read; never modified
	price string       // the price's path the receipt opens
	until time.Time    // believed until: the read plus receiptFresh, or the receipt's expiry if sooner
	// signed are the last paid headers made for this receipt: requests
	// for the same path in the same second carry the same ones.
	signed atomic.Pointer[signedHeaders]
}

// signedHeaders are the values of shopHeaderNames for one request
// method and path, signed at one second.
type signedHeaders struct {
	unix         int64
	method, path string
	vals         [len(shopHeaderNames)]string
}

func newReceiptCache() *receiptCache {
	return &receiptCache{byTok: map[string]*receiptEntry{}, byRef: map[string]string{}, byID: map[string]map[string]struct{}{}}
}

// get is the entry of a receipt found valid for price within the last
// receiptFresh, or nil.
func (c *receiptCache) get(tok, price string, now time.Time) *receiptEntry {
	c.mu.RLock()
	e, ok := c.byTok[tok]
	c.mu.RUnlock()
	if !ok || e.price != price || !now.Before(e.until) {
		return nil
	}
	return e
}

// put remembers a receipt found valid by a read that began at epoch, and
// returns its entry (not kept when something was forgotten since).
func (c *receiptCache) put(tok, price string, o *order.Order, until time.Time, epoch uint64) *receiptEntry {
	e := &receiptEntry{o: o, price: price, until: until}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch.Load() != epoch {
		return e
	}
	if len(c.byTok) >= maxCachedReceipts {
		clear(c.byTok)
		clear(c.byRef)
		clear(c.byID)
	}
	c.byTok[tok] = e
	if c.byID[o.ID] == nil {
		c.byID[o.ID] = map[string]struct{}{}
	}
	c.byID[o.ID][tok] = struct{}{}
	for _, a := range o.Attempts {
		c.byRef[a.Ref] = o.ID
	}
	return e
}

// reset forgets every receipt: anything may have changed (the change feed
// reconnected after missing some).
func (c *receiptCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch.Add(1)
	clear(c.byTok)
	clear(c.byRef)
	clear(c.byID)
}

// forget drops what is cached of the orders of these attempt refs (or of
// these order ids): they changed.
func (c *receiptCache) forget(ids, refs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch.Add(1)
	for _, ref := range refs {
		if id, ok := c.byRef[ref]; ok {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		for tok := range c.byID[id] {
			if e, ok := c.byTok[tok]; ok {
				for _, a := range e.o.Attempts {
					delete(c.byRef, a.Ref)
				}
			}
			delete(c.byTok, tok)
		}
		delete(c.byID, id)
	}
}
