package caddyoss

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func init() {
	caddy.RegisterModule(eventRecorder{})
}

// eventRecorder is an event handler for tests (events.handlers.
// oss_test_record): it records every event it is given in recordedEvents,
// with the origin module and what the {event.data.object} placeholder,
// which a command handler's arguments would use, expands to.
type eventRecorder struct{}

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.oss_test_record", New: func() caddy.Module { return new(eventRecorder) }}
}

func (*eventRecorder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the handler's name
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func (*eventRecorder) Handle(ctx context.Context, e caddy.Event) error {
	rec := recordedEvent{name: e.Name(), data: maps.Clone(e.Data)}
	if o := e.Origin(); o != nil {
		rec.origin = string(o.CaddyModule().ID)
	}
	if repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		rec.objectPlaceholder = repl.ReplaceAll("{event.data.object}", "")
	}
	recordedEvents.add(rec)
	return nil
}

var (
	_ caddyevents.Handler   = (*eventRecorder)(nil)
	_ caddyfile.Unmarshaler = (*eventRecorder)(nil)
)

type recordedEvent struct {
	name, origin      string
	data              map[string]any
	objectPlaceholder string
}

type eventLog struct {
	mu     sync.Mutex
	events []recordedEvent
}

var recordedEvents eventLog

func (l *eventLog) add(e recordedEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) reset() {
	l.mu.Lock()
	l.events = nil
	l.mu.Unlock()
}

func (l *eventLog) all() []recordedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// eventsGlobal subscribes the recorder to every upload event by name.
const eventsGlobal = `	events {
		on upload_verified oss_test_record
		on upload_delivered oss_test_record
		on upload_refused oss_test_record
		on upload_dead oss_test_record
		on callback_rejected oss_test_record
	}
`

// eventsUpload is one upload of an events test: what OSS sent as its
// callback and what the app saw as its Idempotency-Key.
type eventsUpload struct {
	content  string
	callback url.Values
	record   ossemu.CallbackRecord
	id       string
}

// uploadForEvents uploads content in e with the app in mode, checks the
// uploader's answer, and returns what identifies the upload.
func uploadForEvents(t *testing.T, e *deliveryEnv, content, mode string, wantStatus int) eventsUpload {
	t.Helper()
	e.app.setMode(mode)
	before := len(e.emu.Callbacks())
	status, body := e.upload(t, content)
	if status != wantStatus {
		t.Fatalf("uploader got %d %s, want %d", status, body, wantStatus)
	}
	sent := e.emu.Callbacks()
	if len(sent) != before+1 {
		t.Fatalf("OSS sent %d callbacks", len(sent)-before)
	}
	cb := sent[len(sent)-1]
	form, err := url.ParseQuery(cb.Body)
	if err != nil {
		t.Fatal(err)
	}
	up := eventsUpload{content: content, callback: form, record: cb}
	for _, r := range e.app.requests() {
		if r.form().Get("object") == form.Get("object") {
			up.id = r.header.Get("Idempotency-Key")
		}
	}
	if up.id == "" && mode != "down" {
		t.Fatal("the app did not receive the callback")
	}
	return up
}

// resendCallback sends up's callback to Caddy again, as OSS or a relay
// might, with another Authorization when signature is not empty, and
// returns the status.
func resendCallback(t *testing.T, up eventsUpload, signature string) int {
	t.Helper()
	u, _ := url.Parse(up.record.URL)
	status, _ := resend(t, up.record, u.RequestURI(), up.record.Body, func(h http.Header) {
		if signature != "" {
			h.Set("Authorization", signature)
		}
	})
	return status
}

// wantEvent is an event a test expects, once, and what its data must say.
type wantEvent struct {
	name string
	data map[string]any // exact values; an int value -1 means "at least 2"
}

const forgedSignature = "c2lnbmF0dXJl" // valid base64 that does not verify

// Every kind of upload event reaches a subscribed event handler once per
// fact, with the documented data: a callback sent twice is verified once,
// a delivery retried until the app is back is delivered once with its
// attempts, a refusal and a dead letter are reported, and a rejected
// callback is reported without its signature, body or any secret.
func TestEventsOfUploads(t *testing.T) {
	for _, tc := range []struct {
		name          string
		callbackExtra string
		// run makes the uploads and returns the events it expects.
		run func(t *testing.T, e *deliveryEnv) []wantEvent
	}{
		{name: "delivered at once, its callback sent twice", run: func(t *testing.T, e *deliveryEnv) []wantEvent {
			up := uploadForEvents(t, e, "delivered at once", "up", 200)
			if s := resendCallback(t, up, ""); s != 200 {
				t.Fatalf("copy: %d", s)
			}
			return []wantEvent{verifiedWant(up), {eventUploadDelivered, map[string]any{
				"id": up.id, "bucket": "dl-bucket", "object": up.callback.Get("object"), "attempts": 1, "status": 200,
			}}}
		}},
		{name: "retried while the app is down, then delivered", run: func(t *testing.T, e *deliveryEnv) []wantEvent {
			up := uploadForEvents(t, e, "app down, then up", "down", 200)
			e.app.setMode("up")
			keys := e.waitDelivered(t, 1, 15*time.Second)
			if len(keys) != 1 {
				t.Fatalf("not delivered: %v", keys)
			}
			for k := range keys {
				up.id = k
			}
			return []wantEvent{verifiedWant(up), {eventUploadDelivered, map[string]any{
				"id": up.id, "bucket": "dl-bucket", "object": up.callback.Get("object"), "attempts": -1, "status": 200,
			}}}
		}},
		{name: "refused by the app, its callback sent twice", run: func(t *testing.T, e *deliveryEnv) []wantEvent {
			up := uploadForEvents(t, e, "refused", "4xx", 203)
			if s := resendCallback(t, up, ""); s != 409 {
				t.Fatalf("copy of a refused callback: %d", s)
			}
			return []wantEvent{verifiedWant(up), {eventUploadRefused, map[string]any{
				"id": up.id, "bucket": "dl-bucket", "object": up.callback.Get("object"), "attempts": 1, "status": 409,
			}}}
		}},
		{name: "dead after retry_for", callbackExtra: "retry_for 2s", run: func(t *testing.T, e *deliveryEnv) []wantEvent {
			up := uploadForEvents(t, e, "never taken", "5xx", 200)
			return []wantEvent{verifiedWant(up), {eventUploadDead, map[string]any{
				"id": up.id, "bucket": "dl-bucket", "object": up.callback.Get("object"), "attempts": -1, "status": 503,
				"reason": "not delivered within retry_for; the app last answered 503",
			}}}
		}},
		{name: "rejected: a forged signature", run: func(t *testing.T, e *deliveryEnv) []wantEvent {
			up := uploadForEvents(t, e, "genuine, then forged", "up", 200)
			if s := resendCallback(t, up, forgedSignature); s != 403 {
				t.Fatalf("forged copy: %d", s)
			}
			return []wantEvent{verifiedWant(up), {eventUploadDelivered, map[string]any{
				"id": up.id, "bucket": "dl-bucket", "object": up.callback.Get("object"), "attempts": 1, "status": 200,
			}}, {eventCallbackRejected, map[string]any{
				"reason": reasonSignature, "status": 403, "message": "callback signature does not verify", "remote_ip": "127.0.0.1",
			}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDeliveryEnvWith(t, eventsGlobal, "var source events-test\n\t\t\t"+tc.callbackExtra)
			recordedEvents.reset()
			want := tc.run(t, e)
			waitEvents(t, len(want), 15*time.Second)
			time.Sleep(1500 * time.Millisecond) // nothing more arrives
			got := recordedEvents.all()
			if len(got) != len(want) {
				t.Errorf("%d events, want %d: %v", len(got), len(want), names(got))
			}
			for _, w := range want {
				var found []recordedEvent
				for _, g := range got {
					if g.name == w.name {
						found = append(found, g)
					}
				}
				if len(found) != 1 {
					t.Errorf("%s emitted %d times, want once", w.name, len(found))
					continue
				}
				checkEventData(t, found[0], w)
			}
			// An upload's outcome comes after its upload_verified.
			order := slices.IndexFunc(got, func(g recordedEvent) bool { return g.name == eventUploadVerified })
			for i, g := range got {
				if strings.HasPrefix(g.name, "upload_") && g.name != eventUploadVerified && i < order {
					t.Errorf("%s came before upload_verified: %v", g.name, names(got))
				}
			}
			secrets := []string{"dl-secret", forgedSignature}
			for _, cb := range e.emu.Callbacks() {
				form, _ := url.ParseQuery(cb.Body)
				secrets = append(secrets, cb.Header.Get("Authorization"), cb.Body, form.Get("oss_binding"))
			}
			for _, g := range got {
				text := fmt.Sprint(g.data)
				for _, s := range secrets {
					if s != "" && strings.Contains(text, s) {
						t.Errorf("%s carries %q: %s", g.name, s, text)
					}
				}
			}
		})
	}
}

// verifiedWant is the upload_verified event of up.
func verifiedWant(up eventsUpload) wantEvent {
	return wantEvent{eventUploadVerified, map[string]any{
		"id": up.id, "bucket": "dl-bucket", "object": up.callback.Get("object"),
		"size": int64(len(up.content)), "etag": up.callback.Get("etag"), "content_type": "text/plain",
		"vars": map[string]string{"source": "events-test"}, "via": "callback",
	}}
}

func checkEventData(t *testing.T, g recordedEvent, w wantEvent) {
	t.Helper()
	if g.origin != "http.handlers.oss_upload" {
		t.Errorf("%s comes from %q", g.name, g.origin)
	}
	if obj, ok := w.data["object"]; ok && g.objectPlaceholder != obj {
		t.Errorf("%s: {event.data.object} = %q, want %q", g.name, g.objectPlaceholder, obj)
	}
	if w.data["id"] == "" {
		t.Errorf("%s: the test does not know the event id", g.name)
	}
	for k, v := range w.data {
		gv, ok := g.data[k]
		switch {
		case !ok:
			t.Errorf("%s has no %s: %v", g.name, k, g.data)
		case v == -1:
			if n, ok := gv.(int); !ok || n < 2 {
				t.Errorf("%s: %s = %v, want at least 2", g.name, k, gv)
			}
		case fmt.Sprintf("%T %v", gv, gv) != fmt.Sprintf("%T %v", v, v):
			t.Errorf("%s: %s = %T %v, want %T %v", g.name, k, gv, gv, v, v)
		}
	}
	for k := range g.data {
		if _, ok := w.data[k]; !ok {
			t.Errorf("%s has the undocumented field %s = %v", g.name, k, g.data[k])
		}
	}
}

// waitEvents waits (bounded) until n events are recorded.
func waitEvents(t *testing.T, n int, within time.Duration) []recordedEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := recordedEvents.all()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func names(evs []recordedEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.name)
	}
	return out
}
