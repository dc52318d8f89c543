package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-id/gatehouse/internal/store"
)

// outboxCollector reports the outbox's depth at scrape time: messages
// waiting for delivery and messages given up on, over all tenants.
type outboxCollector struct {
	st            store.Store
	pending, dead *prometheus.Desc
	scrapeTimeout time.Duration
}

func newOutboxCollector(st store.Store) *outboxCollector {
	return &outboxCollector{
		st:            st,
		pending:       prometheus.NewDesc("gatehouse_outbox_pending", "Outbox messages waiting for delivery (queue depth).", nil, nil),
		dead:          prometheus.NewDesc("gatehouse_outbox_dead", "Outbox messages dead-lettered and not yet swept.", nil, nil),
		scrapeTimeout: 2 * time.Second,
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.dead
}

// Collect reports nothing when the database does not answer: a missing
// series is better than a made-up zero.
func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.scrapeTimeout)
	defer cancel()
	pending, dead, err := c.st.System().OutboxCounts(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(dead))
}
