// Prometheus metrics (caddy_checkout_*) in Caddy's registry. The counters
// live in the engine so that they keep counting across config reloads;
// each config registers a collector that reads them.
package caddymodule

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// metrics are the counters the sites feed (handlers.Observer).
type metrics struct {
	orders   *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	referers *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy", Subsystem: "checkout", Name: "orders_total",
			Help: "Orders that entered a state (pending when created), by site, provider and state.",
		}, []string{"site", "provider", "state"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy", Subsystem: "checkout", Name: "webhooks_total",
			Help: "Provider webhooks by site, provider and verification result (ok, unauthenticated, malformed, unavailable, error).",
		}, []string{"site", "provider", "result"}),
		referers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy", Subsystem: "checkout", Name: "foreign_referers_total",
			Help: "Customer returns from a Referer that is neither this site, the provider's pages nor return_referers, by site, provider and action (logged, refused).",
		}, []string{"site", "provider", "action"}),
	}
}

// Moved implements handlers.Observer.
func (m *metrics) Moved(site, provider string, to order.State) {
	m.orders.WithLabelValues(site, provider, string(to)).Inc()
}

// Webhook implements handlers.Observer.
func (m *metrics) Webhook(site, provider, result string) {
	m.webhooks.WithLabelValues(site, provider, result).Inc()
}

// ForeignReferer implements handlers.Observer.
func (m *metrics) ForeignReferer(site, provider string, refused bool) {
	action := "logged"
	if refused {
		action = "refused"
	}
	m.referers.WithLabelValues(site, provider, action).Inc()
}

var (
	descDeliveries = prometheus.NewDesc("caddy_checkout_callback_deliveries_total",
		"Shop callback tries by result: delivered, failed (will retry), gone (410), dead (gave up).", []string{"result"}, nil)
	descDead = prometheus.NewDesc("caddy_checkout_deliveries_dead_total",
		"Shop callbacks given up after callback_retry_for (dead-lettered), by site: alert on any increase.", []string{"site"}, nil)
	descOutboxDepth = prometheus.NewDesc("caddy_checkout_outbox_pending",
		"Shop callbacks waiting to be delivered (counted up to 10000).", nil, nil)
	descOutboxAge = prometheus.NewDesc("caddy_checkout_outbox_oldest_seconds",
		"Age of the oldest shop callback waiting to be delivered.", nil, nil)
)

// collector reports an engine's metrics to one config's registry.
type collector struct{ e *engine }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	c.e.metrics.orders.Describe(ch)
	c.e.metrics.webhooks.Describe(ch)
	c.e.metrics.referers.Describe(ch)
	ch <- descDeliveries
	ch <- descDead
	ch <- descOutboxDepth
	ch <- descOutboxAge
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.e.metrics.orders.Collect(ch)
	c.e.metrics.webhooks.Collect(ch)
	c.e.metrics.referers.Collect(ch)
	st := c.e.notifier.Stats()
	for result, n := range map[string]uint64{"delivered": st.Delivered, "failed": st.Failed, "gone": st.Gone, "dead": st.Dead} {
		ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(n), result)
	}
	for site, n := range st.DeadBySite {
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(n), site)
	}
	if !c.e.store.isOpen() {
		return // a config being validated never opens the store
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pending, err := c.e.store.Deliveries(ctx, store.DeliveryFilter{State: store.DeliveryPending, Limit: 10000})
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descOutboxDepth, prometheus.GaugeValue, float64(len(pending)))
	age := 0.0
	for _, d := range pending {
		if a := time.Since(d.CreatedAt).Seconds(); a > age {
			age = a
		}
	}
	ch <- prometheus.MustNewConstMetric(descOutboxAge, prometheus.GaugeValue, age)
}
