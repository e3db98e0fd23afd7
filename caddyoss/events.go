package caddyoss

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// The Caddy events of uploads (docs/events.md lists their data). They are
// emitted through Caddy's events app, whose handlers run synchronously, so
// never on a callback's way to OSS's answer: a handler's own goroutine
// emits them, in the order they happened on this instance.
const (
	// eventUploadVerified: a callback or a confirm verified and its event
	// freshly recorded, once per upload whatever the copies, routes and
	// instances.
	eventUploadVerified = "upload_verified"
	// eventUploadDelivered: the app took the upload's event (2xx).
	eventUploadDelivered = "upload_delivered"
	// eventUploadRefused: the app refused it (its own 4xx): not retried.
	eventUploadRefused = "upload_refused"
	// eventUploadDead: not delivered within retry_for.
	eventUploadDead = "upload_dead"
	// eventCallbackRejected: a request on the callback route refused.
	eventCallbackRejected = "callback_rejected"

	// viaCallback is upload_verified's via when an OSS callback verified
	// the upload, viaConfirm when the confirm route did.
	viaCallback = "callback"
	viaConfirm  = "confirm"

	// uploadEventBuffer bounds the events a handler holds for emission;
	// beyond it (the event handlers are not keeping up) they are dropped.
	uploadEventBuffer = 1024

	// dropLogEvery spaces the log lines about dropped events.
	dropLogEvery = 10 * time.Second
)

// uploadEventNames are the events this package emits.
var uploadEventNames = [...]string{eventUploadVerified, eventUploadDelivered, eventUploadRefused, eventUploadDead, eventCallbackRejected}

// uploadEvents emits one handler's upload events through Caddy's events
// app, from a goroutine of its own, so that the request or the queue
// attempt that produced an event never waits for the event handlers. A nil
// *uploadEvents (the config has no events app) emits nothing.
//
// Until the config has started, the events app's subscriptions are not in
// place: events are held (within the buffer) and emitted once it has.
// Afterwards an event nothing is subscribed to costs one look-up and is
// never built.
type uploadEvents struct {
	app    *caddyevents.App
	ctx    caddy.Context // the handler's, never canceled: the events' origin
	logger *zap.Logger

	started   chan struct{} // closed when the config has started
	startOnce sync.Once
	isStarted atomic.Bool

	mu     sync.RWMutex
	closed bool // the handler was cleaned up; queue is closed
	queue  chan uploadEvent

	dropped     atomic.Uint64
	lastDropLog atomic.Int64 // Unix nanoseconds
}

// uploadEvent is one event waiting for emission.
type uploadEvent struct {
	name string
	data map[string]any
}

// newUploadEvents starts the emitter of the handler provisioned with ctx,
// or returns nil when the config has no events app. It ends with ctx when
// the config never started, else at stop.
func newUploadEvents(ctx caddy.Context, logger *zap.Logger) *uploadEvents {
	a, err := ctx.AppIfConfigured("events")
	if err != nil {
		return nil
	}
	app, ok := a.(*caddyevents.App)
	if !ok {
		return nil
	}
	u := &uploadEvents{
		app:     app,
		ctx:     ctx,
		logger:  logger,
		started: make(chan struct{}),
		queue:   make(chan uploadEvent, uploadEventBuffer),
	}
	// Events held at a reload or shutdown still reach the subscribers of
	// their config, and commands those run are not killed with it.
	u.ctx.Context = context.WithoutCancel(ctx.Context)
	if err := app.On("started", startedHandler{u}); err != nil {
		u.start() // the events app has started already
	}
	go u.run(ctx.Done())
	return u
}

// startedHandler hears Caddy's "started" event: the config's apps, the
// events app's subscriptions included, are in place.
type startedHandler struct{ u *uploadEvents }

func (s startedHandler) Handle(context.Context, caddy.Event) error {
	s.u.start()
	return nil
}

func (u *uploadEvents) start() {
	u.startOnce.Do(func() {
		u.isStarted.Store(true)
		close(u.started)
	})
}

// run emits the queued events in order until stop; events of a config
// that was unloaded before it started are dropped.
func (u *uploadEvents) run(unloaded <-chan struct{}) {
	select {
	case <-u.started:
	case <-unloaded:
	}
	if !u.isStarted.Load() {
		u.stop()
		for e := range u.queue {
			u.drop(e.name)
		}
		return
	}
	for e := range u.queue {
		if u.app.ShouldEmit(e.name) {
			u.app.Emit(u.ctx, e.name, e.data)
		}
	}
}

// stop ends emission: the events queued are still emitted, later ones are
// dropped. It does not wait.
func (u *uploadEvents) stop() {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.closed {
		u.closed = true
		close(u.queue)
	}
}

// wants reports whether an event named name could be heard: before the
// config has started this is not known yet, and it is held.
func (u *uploadEvents) wants(name string) bool {
	return u != nil && (!u.isStarted.Load() || u.app.ShouldEmit(name))
}

// send queues an event without waiting: when the queue is full or stopped
// the event is dropped, counted and logged.
func (u *uploadEvents) send(name string, data map[string]any) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		u.drop(name)
		return
	}
	select {
	case u.queue <- uploadEvent{name, data}:
	default:
		u.drop(name)
	}
}

// drop counts an event that will not be emitted (in
// caddy_oss_events_dropped_total too), and logs the count now and then.
func (u *uploadEvents) drop(name string) {
	ossMetrics.eventsDropped.WithLabelValues(name).Inc()
	n := u.dropped.Add(1)
	now := time.Now().UnixNano()
	last := u.lastDropLog.Load()
	if now-last >= int64(dropLogEvery) && u.lastDropLog.CompareAndSwap(last, now) {
		u.logger.Warn("upload events dropped: the event handlers do not keep up, or the configuration was unloaded",
			zap.String("event", name), zap.Uint64("dropped_total", n))
	}
}

// verified emits upload_verified for a fresh event: its id, where it
// is, what OSS stored and the upload's custom variables, as facts gives
// them (the callback body's variables, by OSS name).
func (u *uploadEvents) verified(ev *delivery.Event, facts map[string]string, via string) {
	if !u.wants(eventUploadVerified) {
		return
	}
	data := map[string]any{
		"id":     ev.ID,
		"bucket": ev.Header[headerBucket],
		"object": ev.Object,
		"vars":   customVars(facts),
		"via":    via,
	}
	if n, err := strconv.ParseInt(facts["size"], 10, 64); err == nil {
		data["size"] = n
	}
	if v := facts["etag"]; v != "" {
		data["etag"] = v
	}
	if v := facts["mimeType"]; v != "" {
		data["content_type"] = v
	}
	u.send(eventUploadVerified, data)
}

// settled is the queue's delivery.Config.OnSettled: it emits
// upload_delivered, upload_refused or upload_dead for a recorded outcome.
func (u *uploadEvents) settled(ev delivery.Event) {
	var name string
	switch ev.State {
	case delivery.Delivered:
		name = eventUploadDelivered
	case delivery.Refused:
		name = eventUploadRefused
	case delivery.Dead:
		name = eventUploadDead
	default:
		return
	}
	if !u.wants(name) {
		return
	}
	data := map[string]any{
		"id":       ev.ID,
		"bucket":   ev.Header[headerBucket],
		"object":   ev.Object,
		"attempts": ev.Attempts,
		"status":   ev.Status,
	}
	if ev.State == delivery.Dead {
		data["reason"] = deadReason(ev)
	}
	u.send(name, data)
}

// deadReason says why an event was given up: retry_for ended, and what
// its last attempt met.
func deadReason(ev delivery.Event) string {
	const r = "not delivered within retry_for"
	switch {
	case ev.LastError != "":
		return r + "; last attempt: " + ev.LastError
	case ev.Status != 0:
		return fmt.Sprintf("%s; the app last answered %d", r, ev.Status)
	}
	return r
}

// rejected emits callback_rejected for a refused callback: the reason
// code it is counted under, the status and message it was answered with
// (which never carry a key, signature or body) and the client's IP.
func (u *uploadEvents) rejected(r *http.Request, err error) {
	if !u.wants(eventCallbackRejected) {
		return
	}
	status := http.StatusBadRequest
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		status = he.StatusCode
	}
	msg := http.StatusText(status)
	var ce *callbackError
	if errors.As(err, &ce) {
		msg = ce.msg
	}
	u.send(eventCallbackRejected, map[string]any{
		"reason":    callbackReason(err),
		"status":    status,
		"message":   msg,
		"remote_ip": clientIP(r),
	})
}

// Interface guard: the emitter hears "started" as an event handler.
var _ caddyevents.Handler = startedHandler{}
