// This file is the notifier's counters, read by the metrics of SPEC §9
// ("callback deliveries by result").

package notify

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Stats counts try outcomes since the Notifier was made.
type Stats struct {
	Delivered uint64 // tries the shop answered with 2xx
	Failed    uint64 // tries that failed (any other answer, no answer, unknown site), including a last one that dead-lettered the delivery
	Gone      uint64 // tries the shop answered with 410: the delivery stopped
	Dead      uint64 // deliveries dead-lettered after the retry horizon

	// DeadBySite splits Dead by the deliveries' sites, for the alert on
	// caddy_checkout_deliveries_dead_total.
	DeadBySite map[string]uint64
}

type counters struct {
	delivered, failed, gone, dead atomic.Uint64

	mu         sync.Mutex
	deadBySite map[string]uint64
}

// deadLettered counts a delivery of site given up.
func (c *counters) deadLettered(site string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadBySite == nil {
		c.deadBySite = map[string]uint64{}
	}
	c.deadBySite[site]++
	c.dead.Add(1)
}

// Stats returns the counters. Each is read atomically; together they are
// a near snapshot, which is what a metrics scrape needs.
func (n *Notifier) Stats() Stats {
	return Stats{
		Delivered: n.stats.delivered.Load(),
		Failed:    n.stats.failed.Load(),
		Gone:      n.stats.gone.Load(),
		Dead:      n.stats.dead.Load(),
		DeadBySite: func() map[string]uint64 {
			n.stats.mu.Lock()
			defer n.stats.mu.Unlock()
			return maps.Clone(n.stats.deadBySite)
		}(),
	}
}
