package caddyoss

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// newTestEventsApp is the events app of a provisioned config (not
// started), with handler subscribed to names (none: no subscription), and
// the config's context. A config without apps gives a nil app.
func newTestEventsApp(t *testing.T, withApp bool, handler caddyevents.Handler, names ...string) (*caddyevents.App, caddy.Context) {
	t.Helper()
	cfg := &caddy.Config{
		Admin:      &caddy.AdminConfig{Disabled: true},
		StorageRaw: json.RawMessage(`{"module":"file_system","root":` + strconv.Quote(t.TempDir()) + `}`),
	}
	if withApp {
		cfg.AppsRaw = caddy.ModuleMap{"events": json.RawMessage(`{}`)}
	}
	// ProvisionContext makes the config's storage certmagic's default;
	// a running Caddy's is put back.
	defaultStorage := certmagic.Default.Storage
	t.Cleanup(func() { certmagic.Default.Storage = defaultStorage })
	ctx, err := caddy.ProvisionContext(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !withApp {
		return nil, ctx
	}
	a, err := ctx.AppIfConfigured("events")
	if err != nil {
		t.Fatal(err)
	}
	app := a.(*caddyevents.App)
	for _, n := range names {
		if err := app.On(n, handler); err != nil {
			t.Fatal(err)
		}
	}
	return app, ctx
}

// testEmitter is an uploadEvents on app, started, whose queue nobody
// reads.
func testEmitter(t *testing.T, app *caddyevents.App, ctx caddy.Context, buffer int) *uploadEvents {
	t.Helper()
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	u := &uploadEvents{app: app, ctx: ctx, logger: zap.NewNop(), started: make(chan struct{}), queue: make(chan uploadEvent, buffer)}
	u.start()
	return u
}

// The emitter queues only what a subscription can hear, never waits for a
// full queue or a stopped handler, and counts what it drops; without an
// events app it does nothing at all.
func TestUploadEventsQueueing(t *testing.T) {
	ev := &delivery.Event{ID: "e1", Object: "uploads/a.png", Header: map[string]string{headerBucket: "b"}}
	facts := map[string]string{"object": "uploads/a.png", "size": "4", "x:user": "alice", "x:" + bindingVar: "2.k.1.x.y"}
	settled := delivery.Event{ID: "e1", Object: "uploads/a.png", State: delivery.Delivered, Attempts: 1, Status: 200}
	emitAll := func(u *uploadEvents) {
		u.verified(ev, facts, viaCallback)
		u.settled(settled)
		u.rejected(httptestRequest(), callbackErr(http.StatusForbidden, reasonSignature, "callback signature does not verify"))
	}
	for _, tc := range []struct {
		name       string
		subscribed []string
		buffer     int
		stopped    bool
		wantQueued []string
		wantDrops  uint64
	}{
		{name: "no subscription", buffer: 8},
		{name: "other events only", subscribed: []string{"cert_obtained"}, buffer: 8},
		{name: "one event", subscribed: []string{eventUploadDelivered}, buffer: 8, wantQueued: []string{eventUploadDelivered}},
		{name: "all events", subscribed: []string{""}, buffer: 8,
			wantQueued: []string{eventUploadVerified, eventUploadDelivered, eventCallbackRejected}},
		{name: "queue full", subscribed: []string{""}, buffer: 1, wantQueued: []string{eventUploadVerified}, wantDrops: 2},
		{name: "stopped", subscribed: []string{""}, buffer: 8, stopped: true, wantDrops: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, ctx := newTestEventsApp(t, true, &eventRecorder{}, tc.subscribed...)
			u := testEmitter(t, app, ctx, tc.buffer)
			if tc.stopped {
				u.stop()
			}
			dropsBefore := droppedEvents()
			done := make(chan struct{})
			go func() {
				defer close(done)
				emitAll(u)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("emitting waited")
			}
			var queued []string
			for len(u.queue) > 0 {
				queued = append(queued, (<-u.queue).name)
			}
			if !slices.Equal(queued, tc.wantQueued) || u.dropped.Load() != tc.wantDrops {
				t.Fatalf("queued %v, dropped %d; want %v, %d", queued, u.dropped.Load(), tc.wantQueued, tc.wantDrops)
			}
			if got := droppedEvents() - dropsBefore; got != float64(tc.wantDrops) {
				t.Errorf("caddy_oss_events_dropped_total rose by %v, want %d", got, tc.wantDrops)
			}
		})
	}

	// No events app in the config (or no config): no emitter, and a nil
	// one does nothing.
	if _, ctx := newTestEventsApp(t, false, nil); newUploadEvents(ctx, zap.NewNop()) != nil {
		t.Fatal("an emitter without an events app")
	}
	noCfg, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	none := newUploadEvents(noCfg, zap.NewNop())
	if none != nil {
		t.Fatal("an emitter without a config")
	}
	emitAll(none)
	none.stop()

	// Unsubscribed, an event is not even built.
	app, ctx := newTestEventsApp(t, true, nil)
	u := testEmitter(t, app, ctx, 8)
	if n := testing.AllocsPerRun(100, func() {
		u.verified(ev, facts, viaCallback)
		u.settled(settled)
	}); n != 0 {
		t.Errorf("an unsubscribed event costs %v allocations", n)
	}
}

// Until the config has started (its subscriptions are not in place yet)
// events are held, then emitted in order once Caddy's "started" event
// comes; a config unloaded before it started drops them.
func TestUploadEventsWaitForStart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		unload   bool
		wantSeen int
	}{
		{"started", false, 2},
		{"unloaded before start", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recordedEvents.reset()
			app, ctx := newTestEventsApp(t, true, &eventRecorder{}, eventUploadDelivered, eventUploadRefused)
			var u *uploadEvents
			unloaded, done := make(chan struct{}), make(chan struct{})
			if tc.unload {
				u = &uploadEvents{app: app, ctx: ctx, logger: zap.NewNop(), started: make(chan struct{}), queue: make(chan uploadEvent, 8)}
				go func() {
					defer close(done)
					u.run(unloaded)
				}()
			} else {
				u = newUploadEvents(ctx, zap.NewNop()) // as a handler's Provision does
				close(done)
			}
			if err := app.Start(); err != nil {
				t.Fatal(err)
			}
			u.settled(delivery.Event{ID: "e1", State: delivery.Delivered, Attempts: 1, Status: 200})
			u.settled(delivery.Event{ID: "e2", State: delivery.Refused, Attempts: 1, Status: 409})
			time.Sleep(50 * time.Millisecond)
			if n := len(recordedEvents.all()); n != 0 {
				t.Fatalf("%d events emitted before the config started", n)
			}
			if tc.unload {
				close(unloaded)
			} else {
				app.Emit(ctx, "started", nil) // as Caddy does once every app has started
			}
			waitEvents(t, tc.wantSeen, 5*time.Second)
			u.stop()
			<-done
			got := recordedEvents.all()
			if len(got) != tc.wantSeen {
				t.Fatalf("%d events emitted, want %d", len(got), tc.wantSeen)
			}
			if tc.wantSeen == 2 && (got[0].data["id"] != "e1" || got[1].data["id"] != "e2") {
				t.Fatalf("out of order: %v", got)
			}
			if tc.unload && u.dropped.Load() != 2 {
				t.Fatalf("dropped %d, want 2", u.dropped.Load())
			}
		})
	}
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest("POST", "/oss/callback", nil)
	r.RemoteAddr = "192.0.2.7:4711"
	return r
}

// droppedEvents sums caddy_oss_events_dropped_total over its events.
func droppedEvents() float64 {
	n := 0.0
	for _, e := range uploadEventNames {
		n += testutil.ToFloat64(ossMetrics.eventsDropped.WithLabelValues(e))
	}
	return n
}
