package caddyoss

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// Dead letters: the events of each handler's queue given up after
// retry_for. The admin API (admin.go) lists them and redelivers or drops
// them; the gauge below and the startup line show how many there are.

// startupCountTimeout bounds the count of dead events for the startup
// line.
const startupCountTimeout = 2 * time.Second

// deadGauge is caddy_oss_callback_queue_dead: for each handler of this
// process with a callback route, its dead events as its queue last counted
// them (at each scan, every 10 s). The handler label is the handler's id
// (a digest, as in its startup line), never a bucket, key or URL.
type deadGauge struct{ desc *prometheus.Desc }

func newDeadGauge() *deadGauge {
	return &deadGauge{prometheus.NewDesc(prometheus.BuildFQName("caddy", "oss", "callback_queue_dead"),
		"Upload events not delivered within retry_for and kept as dead, by handler id.", []string{"handler"}, nil)}
}

func (g *deadGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *deadGauge) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	liveQueues.Range(func(q, hid any) bool {
		if id := hid.(string); !seen[id] {
			seen[id] = true
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(q.(*delivery.Queue).Dead()), id)
		}
		return true
	})
}

// deadAtStartup counts the handler's dead events for its startup line (0
// without a callback route, or when storage fails or does not answer in
// time: that is logged as a warning with its cause, so that the line's
// lack of dead_events is not taken for none).
func (h *Handler) deadAtStartup() int {
	if h.callback == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), startupCountTimeout)
	defer cancel()
	n, err := h.callback.events.CountDead(ctx)
	if err != nil {
		h.logger.Warn("counting the dead events for the startup line failed", zap.String("handler_id", h.id), zap.Error(err))
		return 0
	}
	return n
}
