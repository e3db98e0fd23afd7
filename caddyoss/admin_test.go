package caddyoss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// adminDo serves one request with a's routes and answers as the admin
// endpoint does: an error becomes its status and {"error": …}.
func adminDo(t *testing.T, a *AdminAPI, method, target string) (int, http.Header, map[string]any) {
	t.Helper()
	routes := a.Routes()
	if len(routes) != 1 || routes[0].Pattern != "/oss_upload/" {
		t.Fatalf("routes %+v", routes)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, nil)
	status := http.StatusOK
	if err := routes[0].Handler.ServeHTTP(rec, req); err != nil {
		var ae caddy.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("%s %s: %v is not an APIError", method, target, err)
		}
		status = ae.HTTPStatus
		rec.Body.Reset()
		_ = json.NewEncoder(rec.Body).Encode(map[string]string{"error": ae.Error()})
	} else if rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, target, rec.Header().Get("Content-Type"))
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: %v in %s", method, target, err, rec.Body)
	}
	return status, rec.Header(), body
}

// storeEvent writes an event record as the queue does.
func storeEvent(t *testing.T, st certmagic.Storage, key string, ev delivery.Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Store(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
}

// The admin routes on a handler served here (its running queue) and on a
// handler that only has records in storage: every route, method and
// state, and the errors.
func TestAdminAPIRoutes(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.Callback = &CallbackConfig{URL: "https://app.example.com/cb", RetryFor: caddy.Duration(time.Hour)}
	})
	now := time.Now()
	a := &AdminAPI{storage: h.storage, logger: zap.NewNop(), now: func() time.Time { return now }}
	const gone = "00000000000000000000000000000000" // a handler not served here, with records
	prefix := func(id string) string { return eventsPrefix + "/" + id }
	group := (now.Add(24*time.Hour).Unix()/3600 + 1) * 3600
	dead := func(id, object string) delivery.Event {
		return delivery.Event{ID: id, Object: object, Body: []byte("object=" + object), State: delivery.Dead,
			Header:   map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			Attempts: 5, Status: 503, Created: now.Add(-26 * time.Hour), Expires: now.Add(24 * time.Hour)}
	}
	for _, id := range []string{"d1", "d2", "d3"} {
		storeEvent(t, h.storage, fmt.Sprintf("%s/dead/%d/%s", prefix(h.id), group, id), dead(id, "uploads/"+id+".png"))
	}
	pending := dead("p1", "uploads/p1.png")
	pending.State, pending.NextAt, pending.Created = delivery.Received, now.Add(time.Hour), now.Add(-time.Minute)
	storeEvent(t, h.storage, prefix(h.id)+"/pending/p1", pending)
	delivered := dead("ok", "uploads/ok.png")
	delivered.State = delivery.Delivered
	storeEvent(t, h.storage, fmt.Sprintf("%s/done/%d/ok", prefix(h.id), group), delivered)
	storeEvent(t, h.storage, fmt.Sprintf("%s/dead/%d/g1", prefix(gone), group), dead("g1", "old/g1.png"))
	storeEvent(t, h.storage, fmt.Sprintf("%s/dead/%d/g2", prefix(gone), group), dead("g2", "old/g2.png"))

	base := "/oss_upload/" + h.id
	for _, tc := range []struct {
		method, target string
		status         int
		check          func(t *testing.T, body map[string]any, header http.Header)
	}{
		{"GET", "/oss_upload/", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			want := fmt.Sprintf(`[{"dead":2,"id":%q,"pending":0,"served":false},{"dead":3,"id":%q,"pending":1,"served":true}]`, gone, h.id)
			if got, _ := json.Marshal(b["handlers"]); string(got) != want {
				t.Errorf("handlers %s\nwant %s", got, want)
			}
		}},
		{"GET", base, 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if b["dead"] != 3.0 || b["pending"] != 1.0 || b["served"] != true {
				t.Errorf("%v", b)
			}
		}},
		{"GET", base + "/events?state=dead", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			evs := b["events"].([]any)
			if len(evs) != 3 || b["handler"] != h.id {
				t.Fatalf("%v", b)
			}
			e := evs[0].(map[string]any)
			if e["state"] != "dead" || e["object"] == "" || e["attempts"] != 5.0 || e["status"] != 503.0 || e["age"] != "26h0m0s" || e["body"] != nil {
				t.Errorf("listed event %v", e)
			}
		}},
		{"GET", base + "/events?state=pending", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			evs := b["events"].([]any)
			if len(evs) != 1 || evs[0].(map[string]any)["id"] != "p1" || evs[0].(map[string]any)["state"] != "pending" ||
				evs[0].(map[string]any)["next_at"] == nil {
				t.Errorf("%v", b)
			}
		}},
		{"GET", base + "/events", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if evs := b["events"].([]any); len(evs) != 4 {
				t.Errorf("pending and dead: %d events", len(evs))
			}
		}},
		{"GET", base + "/events?state=delivered", 400, errorSays("use pending or dead")},
		{"GET", base + "/events/d1", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if b["id"] != "d1" || b["state"] != "dead" || b["body"] != "object=uploads/d1.png" || b["expires"] == nil ||
				b["header"].(map[string]any)["Content-Type"] == nil {
				t.Errorf("%v", b)
			}
		}},
		{"GET", base + "/events/ok", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if b["state"] != "delivered" {
				t.Errorf("%v", b)
			}
		}},
		{"GET", base + "/events/nope", 404, errorSays("has no event")},
		{"GET", base + "/events/" + strings.Repeat("x", 300), 404, errorSays("has no event")},
		{"GET", base + "/events/a%2Fb", 404, nil},
		{"GET", base + "/events/%00", 404, errorSays("has no event")},
		{"GET", "/oss_upload/ffffffffffffffffffffffffffffffff/events", 404, errorSays("no oss_upload handler")},
		{"GET", "/oss_upload/" + strings.ToUpper(h.id) + "/events", 404, errorSays("32 hex digits")},
		{"GET", "/oss_upload/../config/", 404, nil},
		{"GET", base + "/nothing", 404, errorSays("no such oss_upload route")},
		{"GET", base + "/events/d1/redeliver/x", 404, nil},
		{"POST", "/oss_upload/", 405, allowed("GET")},
		{"POST", base + "/events", 405, allowed("GET")},
		{"PUT", base + "/events/d1", 405, allowed("GET, DELETE")},
		{"GET", base + "/events/d1/redeliver", 405, allowed("POST")},
		{"DELETE", base + "/dead/redeliver", 405, allowed("POST")},
		{"POST", base + "/events/p1/redeliver", 409, errorSays("is pending, not dead")},
		{"DELETE", base + "/events/p1", 409, errorSays("is pending, not dead")},
		{"POST", base + "/events/ok/redeliver", 409, errorSays("is delivered, not dead")},
		{"DELETE", base + "/events/ok", 409, errorSays("is delivered, not dead")},
		{"POST", base + "/events/nope/redeliver", 404, errorSays("has no event")},
		{"POST", base + "/events/d1/redeliver", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if b["id"] != "d1" || b["state"] != "pending" || b["redelivered"] == nil || b["warning"] != nil {
				t.Errorf("%v", b)
			}
		}},
		{"POST", base + "/events/d1/redeliver", 409, errorSays("is pending, not dead")},
		{"DELETE", base + "/events/d2", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if b["id"] != "d2" || b["dropped"] != true || b["state"] != "dead" {
				t.Errorf("%v", b)
			}
		}},
		{"GET", base + "/events/d2", 404, nil},
		{"POST", base + "/dead/redeliver", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if evs := b["events"].([]any); b["redelivered"] != 1.0 || len(evs) != 1 || evs[0].(map[string]any)["id"] != "d3" {
				t.Errorf("%v", b)
			}
		}},
		{"GET", base, 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if b["dead"] != 0.0 || b["pending"] != 3.0 {
				t.Errorf("%v", b)
			}
		}},
		{"GET", "/oss_upload/" + gone + "/events?state=dead", 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if len(b["events"].([]any)) != 2 {
				t.Errorf("%v", b)
			}
		}},
		{"POST", "/oss_upload/" + gone + "/events/g1/redeliver", 409, errorSays("not configured in this Caddy")},
		{"POST", "/oss_upload/" + gone + "/dead/redeliver", 409, errorSays("not configured in this Caddy")},
		{"DELETE", "/oss_upload/" + gone + "/events/g1", 200, nil},
		{"GET", "/oss_upload/" + gone, 200, func(t *testing.T, b map[string]any, _ http.Header) {
			if b["dead"] != 1.0 || b["served"] != false {
				t.Errorf("%v", b)
			}
		}},
	} {
		name := tc.method + " " + strings.TrimPrefix(tc.target, "/oss_upload/")
		t.Run(name[:min(len(name), 90)], func(t *testing.T) {
			status, header, body := adminDo(t, a, tc.method, tc.target)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if tc.check != nil {
				tc.check(t, body, header)
			}
		})
	}
	// The served handler's queue owes what was redelivered, at once.
	if n := h.callback.events.Owed(); n < 2 {
		t.Errorf("the running queue owes %d events, want at least the 2 redelivered", n)
	}
}

func errorSays(substr string) func(*testing.T, map[string]any, http.Header) {
	return func(t *testing.T, b map[string]any, _ http.Header) {
		t.Helper()
		if msg, _ := b["error"].(string); !strings.Contains(msg, substr) {
			t.Errorf("error %q does not say %q", msg, substr)
		}
	}
}

func allowed(methods string) func(*testing.T, map[string]any, http.Header) {
	return func(t *testing.T, b map[string]any, h http.Header) {
		t.Helper()
		if h.Get("Allow") != methods {
			t.Errorf("Allow %q, want %q", h.Get("Allow"), methods)
		}
	}
}

// The admin routes are registered with the handler: every Caddy that
// links oss_upload serves them.
func TestAdminAPIRegistered(t *testing.T) {
	info, err := caddy.GetModule("admin.api.oss_upload")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.New().(caddy.AdminRouter); !ok {
		t.Fatal("admin.api.oss_upload is not an admin router")
	}
}

// faultyStorage fails Store or Delete on keys containing a substring.
type faultyStorage struct {
	certmagic.Storage
	mu                    sync.Mutex
	failStore, failDelete string
}

func (s *faultyStorage) setFaults(store, del string) {
	s.mu.Lock()
	s.failStore, s.failDelete = store, del
	s.mu.Unlock()
}

func (s *faultyStorage) fails(op, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	substr := s.failStore
	if op == "delete" {
		substr = s.failDelete
	}
	return substr != "" && strings.Contains(key, substr)
}

func (s *faultyStorage) Store(ctx context.Context, key string, value []byte) error {
	if s.fails("store", key) {
		return errors.New("injected: store " + key)
	}
	return s.Storage.Store(ctx, key, value)
}

func (s *faultyStorage) Delete(ctx context.Context, key string) error {
	if s.fails("delete", key) {
		return errors.New("injected: delete " + key)
	}
	return s.Storage.Delete(ctx, key)
}

// A storage failure during a redelivery through the admin routes loses
// nothing: the pending record cannot be written (500, still dead), or the
// dead record cannot be deleted (200 with a warning: pending again).
func TestAdminAPIRedeliverStorageFailure(t *testing.T) {
	for _, tc := range []struct {
		name              string
		store, delete     string
		status            int
		pending, deadKept bool
		answerSays, state string
	}{
		{"pending record not written", "/pending/", "", 500, false, true, "stays dead", ""},
		{"dead record not deleted", "", "/dead/", 200, true, true, "could not be deleted", "pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &faultyStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
			h := testHandler(t, func(h *Handler) {
				h.storage = st
				h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
			})
			now := time.Now()
			a := &AdminAPI{storage: st, logger: zap.NewNop(), now: time.Now}
			// In a group the running queue does not look in (not its
			// expiry's), so that it leaves a left-over dead record alone.
			deadKey := fmt.Sprintf("%s/%s/dead/%d/d1", eventsPrefix, h.id, (now.Unix()/3600+50)*3600)
			storeEvent(t, st, deadKey, delivery.Event{ID: "d1", Object: "o", Body: []byte("b"), State: delivery.Dead,
				Created: now.Add(-time.Hour), Expires: now.Add(time.Hour)})
			st.setFaults(tc.store, tc.delete)
			status, _, body := adminDo(t, a, "POST", "/oss_upload/"+h.id+"/events/d1/redeliver")
			st.setFaults("", "")
			msg, _ := body["error"].(string)
			if w, _ := body["warning"].(string); w != "" {
				msg = w
			}
			if status != tc.status || !strings.Contains(msg, tc.answerSays) || body["state"] != nilIfEmpty(tc.state) {
				t.Fatalf("%d %v", status, body)
			}
			if _, err := st.Load(t.Context(), deadKey); (err == nil) != tc.deadKept {
				t.Fatalf("dead record: %v", err)
			}
			if _, err := st.Load(t.Context(), eventsPrefix+"/"+h.id+"/pending/d1"); (err == nil) != tc.pending {
				t.Fatalf("pending record: %v", err)
			}
		})
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
