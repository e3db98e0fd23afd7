package caddyoss

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
	"github.com/caddy-oss/caddy-oss/internal/quota"
	"github.com/caddy-oss/caddy-oss/internal/sts"
)

// Label values of the oss_upload metrics. A label only ever carries one of
// these values: never a key, user, bucket, object name, signature or
// secret.
const (
	// route of caddy_oss_sign_requests_total and
	// caddy_oss_sign_duration_seconds.
	signRoutePostPolicy = "post_policy"
	signRoutePresign    = "presign"
	signRouteSTS        = "sts"
	signRouteUppy       = "uppy" // every Uppy Companion route below uppy_path

	// outcome of caddy_oss_sign_requests_total.
	signOK      = "ok"      // signed
	signRefused = "refused" // 4xx: the client's fault
	signError   = "error"   // 5xx: ours or upstream's

	// source of caddy_oss_sts_credentials_total: sts.SourceCache and
	// sts.SourceAssumeRole.

	// result of caddy_oss_callbacks_total.
	callbackVerified = "verified"
	callbackRejected = "rejected"

	// outcome of caddy_oss_callback_deliveries_total.
	deliveryDelivered = "delivered"     // the upstream answered
	deliveryQueued    = "queued"        // kept for a later attempt (durable delivery)
	deliveryRetried   = "retried"       // attempted again (durable delivery)
	deliveryDuplicate = "duplicate"     // a replay, answered without the upstream
	deliveryFailed    = "failed"        // delivery direct: the upstream returned an error or a 5xx
	deliveryRefused   = "refused"       // the app refused the upload (a 4xx): not retried
	deliveryDead      = "dead"          // not delivered within retry_for, kept as dead
	deliveryLost      = "lost"          // an owed record vanished from storage
	deliveryStorage   = "storage_error" // a storage operation of the queue failed; retried
)

// Reasons of caddy_oss_callbacks_total: reasonOK for a verified callback,
// one of the others for a rejected one.
const (
	reasonOK           = "ok"
	reasonMethod       = "method"        // not POST
	reasonHeaders      = "headers"       // Authorization or x-oss-pub-key-url missing or not base64
	reasonUntrustedKey = "untrusted_key" // the public key URL is not trusted
	reasonKeyFetch     = "key_fetch"     // the public key could not be fetched
	reasonSignature    = "signature"     // the signature does not verify
	reasonBody         = "body"          // unreadable, too large, Content-MD5 or template mismatch
	reasonBinding      = "binding"       // no valid, unexpired binding of this site covering the object
	reasonConfirm      = "confirm"       // OSS does not confirm the object's facts
	reasonBucket       = "bucket"        // another bucket is named
	reasonStorage      = "storage"       // the binding key or replay records are unavailable
	reasonLimits       = "limits"        // the stored object is outside max_size, min_size or allow_types; it was deleted
	reasonURL          = "url"           // a bound callback sent to another path or query than the one issued
	reasonQuota        = "quota"         // the verified upload does not fit its quota; it was deleted
)

// ossMetrics are the collectors of every oss_upload handler. They are
// created once per process and registered with each config's registry, so
// counts carry over config reloads.
var ossMetrics = newOSSMetrics()

// metricSet holds the collectors; see docs/operations.md, "Metrics".
type metricSet struct {
	signRequests      *prometheus.CounterVec
	signDuration      *prometheus.HistogramVec
	stsCredentials    *prometheus.CounterVec
	stsBroker         sts.Metrics // what the STS broker increments, looked up once
	assumeRoleErrors  prometheus.Counter
	callbacks         *prometheus.CounterVec
	confirms          *prometheus.CounterVec
	deliveries        *prometheus.CounterVec
	callbackQueueSize prometheus.GaugeFunc
	callbackQueueDead *deadGauge
	quotaRefusals     *prometheus.CounterVec
	eventsDropped     *prometheus.CounterVec
}

// newOSSMetrics creates the collectors, unregistered.
func newOSSMetrics() *metricSet {
	const ns, sub = "caddy", "oss"
	m := &metricSet{
		signRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sign_requests_total",
			Help: "Requests to the signing routes, by route and outcome (ok, refused: 4xx, error: 5xx).",
		}, []string{"route", "outcome"}),
		signDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "sign_duration_seconds",
			Help:    "Time to answer a request to a signing route, STS calls included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		stsCredentials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sts_credentials_total",
			Help: "Temporary credentials served from the STS cache, and obtained by successful AssumeRole calls.",
		}, []string{"source"}),
		assumeRoleErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sts_assume_role_errors_total",
			Help: "AssumeRole calls that failed.",
		}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "callbacks_total",
			Help: "Upload callbacks, verified (duplicates included) or rejected, by reason.",
		}, []string{"result", "reason"}),
		confirms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "confirms_total",
			Help: "Requests to the confirm route, verified (duplicates included) or rejected, by reason.",
		}, []string{"result", "reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "callback_deliveries_total",
			Help: "Verified callbacks by what became of them: delivered, queued, retried, duplicate or failed.",
		}, []string{"outcome"}),
		callbackQueueSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "callback_queue_pending",
			Help: "Verified callbacks waiting for delivery.",
		}, owedEvents),
		callbackQueueDead: newDeadGauge(),
		quotaRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "quota_refusals_total",
			Help: "Requests refused by the upload quota (a signing route's 429, a verified upload deleted), by route and by the limit: bytes, uploads or pending.",
		}, []string{"route", "reason"}),
		eventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "events_dropped_total",
			Help: "Upload events not emitted, by event: the event handlers did not keep up, or the configuration was unloaded.",
		}, []string{"event"}),
	}
	// Every outcome is exported from the start, at zero.
	for _, o := range []string{deliveryDelivered, deliveryQueued, deliveryRetried, deliveryDuplicate, deliveryFailed,
		deliveryRefused, deliveryDead, deliveryLost, deliveryStorage} {
		m.deliveries.WithLabelValues(o)
	}
	for _, e := range uploadEventNames {
		m.eventsDropped.WithLabelValues(e)
	}
	// The STS broker's series: both sources are exported from the start
	// too.
	m.stsBroker = sts.Metrics{
		FromCache:        m.stsCredentials.WithLabelValues(sts.SourceCache),
		FromAssumeRole:   m.stsCredentials.WithLabelValues(sts.SourceAssumeRole),
		AssumeRoleErrors: m.assumeRoleErrors,
	}
	return m
}

// collectors lists the collectors in m.
func (m *metricSet) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.signRequests, m.signDuration, m.stsCredentials, m.assumeRoleErrors,
		m.callbacks, m.confirms, m.deliveries, m.callbackQueueSize, m.callbackQueueDead,
		m.quotaRefusals, m.eventsDropped,
	}
}

// registerMetrics registers the package's collectors with reg, the
// registry of the config being provisioned (Caddy builds a new one for
// every config and serves it at the admin endpoint's /metrics). Every
// oss_upload handler of a config registers with the same registry, so an
// AlreadyRegisteredError for the same collector is expected: the one
// registered, which holds the counts, stays. Any other error (such as
// another collector under one of the names) is logged: that metric is then
// missing from /metrics, and requests are served as usual.
func registerMetrics(reg *prometheus.Registry, logger *zap.Logger) {
	if reg == nil {
		return
	}
	for _, c := range ossMetrics.collectors() {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if err == nil || errors.As(err, &are) && are.ExistingCollector == c {
			continue
		}
		logger.Warn("registering metrics failed", zap.Error(err))
	}
}

// observeSign records a request to a signing route that started at start
// and ended with err.
func observeSign(route string, start time.Time, err error) {
	c := signCollectorsFor(route)
	c.duration.Observe(time.Since(start).Seconds())
	switch signOutcome(err) {
	case signOK:
		c.ok.Inc()
	case signRefused:
		c.refused.Inc()
	default:
		c.error.Inc()
	}
}

// signCollectors are one route's series, looked up once: finding a series
// by its label values hashes them on every call.
type signCollectors struct {
	duration           prometheus.Observer
	ok, refused, error prometheus.Counter
}

var signCollectorsByRoute sync.Map // route → *signCollectors

func signCollectorsFor(route string) *signCollectors {
	if c, ok := signCollectorsByRoute.Load(route); ok {
		return c.(*signCollectors)
	}
	c := &signCollectors{
		duration: ossMetrics.signDuration.WithLabelValues(route),
		ok:       ossMetrics.signRequests.WithLabelValues(route, signOK),
		refused:  ossMetrics.signRequests.WithLabelValues(route, signRefused),
		error:    ossMetrics.signRequests.WithLabelValues(route, signError),
	}
	actual, _ := signCollectorsByRoute.LoadOrStore(route, c)
	return actual.(*signCollectors)
}

// signOutcome classifies a signing route's result by its status.
func signOutcome(err error) string {
	if err == nil {
		return signOK
	}
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 {
		return signRefused
	}
	return signError
}

// callbackReason is the reason code a rejection carries. Every rejection
// carries one (see callbackErr); an error without (none today) counts as
// body.
func callbackReason(err error) string {
	var ce *callbackError
	if errors.As(err, &ce) {
		return ce.reason
	}
	return reasonBody
}

// countCallback records a verified callback (err nil) or a rejected one.
func countCallback(err error) {
	if err == nil {
		ossMetrics.callbacks.WithLabelValues(callbackVerified, reasonOK).Inc()
		return
	}
	ossMetrics.callbacks.WithLabelValues(callbackRejected, callbackReason(err)).Inc()
}

// countConfirm records a verified confirm (err nil) or a rejected one,
// with the reasons of callbacks.
func countConfirm(err error) {
	if err == nil {
		ossMetrics.confirms.WithLabelValues(callbackVerified, reasonOK).Inc()
		return
	}
	ossMetrics.confirms.WithLabelValues(callbackRejected, callbackReason(err)).Inc()
}

// countVia counts a verified or rejected upload on the route it came by.
func countVia(via string, err error) {
	if via == viaConfirm {
		countConfirm(err)
	} else {
		countCallback(err)
	}
}

// countQuotaRefusal counts a request the quota refused on route (a signing
// route's name, or "callback", "confirm") for reason.
func countQuotaRefusal(route string, reason quota.Reason) {
	ossMetrics.quotaRefusals.WithLabelValues(route, string(reason)).Inc()
}

// observeDelivery counts an outcome of the delivery queue (its Outcome
// names are this metric's label values) or of delivery direct.
func observeDelivery(outcome string) {
	ossMetrics.deliveries.WithLabelValues(outcome).Inc()
}

// liveQueues holds the event queues of the provisioned handlers, whose
// owed events callback_queue_pending sums, with their handler ids.
var liveQueues sync.Map // *delivery.Queue → handler id (string)

func owedEvents() float64 {
	n := 0
	liveQueues.Range(func(q, _ any) bool {
		n += q.(*delivery.Queue).Owed()
		return true
	})
	return float64(n)
}
