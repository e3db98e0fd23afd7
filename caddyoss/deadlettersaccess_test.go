package caddyoss

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The admin routes are guarded by the admin endpoint's access controls and
// nothing else: with origins and enforce_origin, a request without an
// allowed Origin, or to another Host, is refused with 403 and changes
// nothing; the same request with the allowed Origin is served. Without
// them, a cross-origin request (a web page) is refused too.
func TestDeadLettersAdminAccess(t *testing.T) {
	e := newDeliveryEnv(t, "retry_for 2s")
	handler, keys := killUploads(t, e, 1)
	e.app.setMode("up")
	dir := e.config[strings.Index(e.config, "storage file_system ")+len("storage file_system "):]
	dir = dir[:strings.IndexByte(dir, '\n')]
	deadFile := filepath.Join(dir, "oss_upload", "events", handler, "dead", "*", keys[0])
	base := "/oss_upload/" + handler
	attempts := []struct{ method, path string }{
		{"GET", "/oss_upload/"},
		{"GET", base + "/events?state=dead"},
		{"GET", base + "/events/" + keys[0]},
		{"POST", base + "/events/" + keys[0] + "/redeliver"},
		{"POST", base + "/dead/redeliver"},
		{"DELETE", base + "/events/" + keys[0]},
	}
	sent := len(e.app.requests())
	unchanged := func(t *testing.T) {
		t.Helper()
		time.Sleep(1500 * time.Millisecond) // a redelivery would be attempted within a second
		if m, _ := filepath.Glob(deadFile); len(m) != 1 {
			t.Fatalf("the dead record changed: %v", m)
		}
		if n := len(e.app.requests()); n != sent {
			t.Fatalf("the app got %d more requests", n-sent)
		}
	}

	t.Run("default admin, a web page's request", func(t *testing.T) {
		for _, a := range attempts {
			if status, body := adminRequest(t, a.method, a.path, "https://evil.example"); status != 403 {
				t.Errorf("%s %s with a foreign Origin: %d %s", a.method, a.path, status, body)
			}
		}
		unchanged(t)
	})

	guarded := strings.Replace(e.config, "admin localhost:2999\n",
		"admin localhost:2999 {\n\t\torigins localhost:2999\n\t\tenforce_origin\n\t}\n", 1)
	if guarded == e.config {
		t.Fatal("the admin option was not replaced")
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(guarded), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Loaded in process: the guarded endpoint refuses the test's own
	// /load, and so would it the next tests', which get an open one back.
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := caddy.Load([]byte(`{"admin":{"listen":"localhost:2999","config":{"persist":false}}}`), true); err != nil {
			t.Error(err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if status, _ := adminRequest(t, "GET", "/config/", ""); status == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guarded admin endpoint did not start")
		}
	}

	t.Run("enforce_origin", func(t *testing.T) {
		for _, origin := range []string{"", "http://evil.example", "http://localhost:2019"} {
			for _, a := range attempts {
				if status, body := adminRequest(t, a.method, a.path, origin); status != 403 {
					t.Errorf("%s %s with Origin %q: %d %s", a.method, a.path, origin, status, body)
				}
			}
		}
		// Another Host, with the allowed Origin.
		req, _ := http.NewRequest("POST", "http://127.0.0.1:2999"+base+"/events/"+keys[0]+"/redeliver", nil)
		req.Header.Set("Origin", "http://localhost:2999")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("another Host: %d", resp.StatusCode)
		}
		unchanged(t)
	})

	t.Run("the allowed origin", func(t *testing.T) {
		if got := deadEvents(t, handler, "http://localhost:2999"); !slices.Equal(got, keys) {
			t.Fatalf("dead %v", got)
		}
		if status, body := adminRequest(t, "POST", base+"/events/"+keys[0]+"/redeliver", "http://localhost:2999"); status != 200 {
			t.Fatalf("redeliver with the allowed origin: %d %s", status, body)
		}
		for deadline := time.Now().Add(15 * time.Second); sentWith(e, sent, keys[0]) == 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("not delivered")
			}
		}
	})
}
