package sandbox

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// The demo app serves the page (naming where ali-oss comes from), the
// script and the bundle, and records form and JSON callbacks.
func TestSandboxDemoApp(t *testing.T) {
	emu, err := ossemu.New(ossemu.Options{Buckets: []string{bucketName}})
	if err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(t.TempDir(), "sdk.js")
	if err := os.WriteFile(js, []byte("window.OSS = 1;"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bundle         aliOSSBundle
		script, banner string
	}{
		{aliOSSBundle{Source: fromCDN}, aliOSSCDN, "cd e2e &amp;&amp; npm ci"},
		{aliOSSBundle{Source: fromLocal, Path: js, Shown: "e2e/node_modules/ali-oss/dist/aliyun-oss-sdk.min.js"}, "/ali-oss.js",
			"the local npm copy <code>e2e/node_modules/ali-oss/dist/aliyun-oss-sdk.min.js</code>"},
		{aliOSSBundle{Source: fromFlag, Path: js, Shown: "sdk.js"}, "/ali-oss.js", "<code>--ali-oss-js</code>: <code>sdk.js</code>"},
	} {
		app, err := startDemoApp(tc.bundle, uppyBundle{Source: fromCDN, Version: uppyVersion}, emu, "")
		if err != nil {
			t.Fatal(err)
		}
		if code, _, page := get(t, app.URL+"/"); code != 200 || !strings.Contains(page, `<script src="`+tc.script+`"></script>`) ||
			!strings.Contains(page, `data-source="`+tc.bundle.Source+`"`) || !strings.Contains(page, tc.banner) {
			t.Errorf("page with the %s bundle: %d\n%s", tc.bundle.Source, code, page)
		}
		if code, _, body := get(t, app.URL+"/ali-oss.js"); (tc.bundle.Path == "" && code != 404) || (tc.bundle.Path != "" && body != "window.OSS = 1;") {
			t.Errorf("ali-oss.js with the %s bundle: %d %s", tc.bundle.Source, code, body)
		}
		if code, _, body := get(t, app.URL+"/app.js"); code != 200 || !strings.Contains(body, "/oss/post-policy") || !strings.Contains(body, "/demo/objects") {
			t.Errorf("app.js: %d", code)
		}
		if code, h, body := get(t, app.URL+"/tabs.js"); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") ||
			!strings.Contains(body, "sandbox_user=") {
			t.Errorf("tabs.js: %d %s", code, h.Get("Content-Type"))
		}

		var answer struct {
			OK       bool
			Callback demoCallback
		}
		_, _, body := do(t, http.MethodPost, app.URL+"/oss/callback", http.Header{"X-Oss-Callback-Verified": {"true"}},
			strings.NewReader("bucket=sandbox&object=uploads%2Fa.png&size=3"))
		if err := json.Unmarshal(body, &answer); err != nil || !answer.OK || answer.Callback.Fields["object"] != "uploads/a.png" ||
			answer.Callback.Verified != "true" {
			t.Fatalf("callback answer %+v %v", answer, err)
		}
		// A JSON callback body (body_type json) is read as JSON.
		_, _, body = do(t, http.MethodPost, app.URL+"/oss/callback", http.Header{"Content-Type": {"application/json"}},
			strings.NewReader(`{"object":"uploads/b.png","size":7}`))
		if err := json.Unmarshal(body, &answer); err != nil || answer.Callback.Fields["object"] != "uploads/b.png" ||
			answer.Callback.Fields["size"] != "7" {
			t.Fatalf("JSON callback answer %+v %v", answer, err)
		}
		if code, _, list := get(t, app.URL+"/demo/callbacks"); code != 200 || !strings.Contains(list, `"object":"uploads/a.png"`) ||
			!strings.Contains(list, `"object":"uploads/b.png"`) {
			t.Errorf("callbacks list: %d %s", code, list)
		}
		app.Close()
	}
}

// Paused, the demo app answers callbacks 503 with a JSON error and records
// nothing, as an app that is down would; it counts each delivery of a
// callback by its Idempotency-Key, and records the key and the count once
// it is resumed. A callback already recorded is not recorded again.
func TestSandboxDemoAppPause(t *testing.T) {
	emu, err := ossemu.New(ossemu.Options{Buckets: []string{bucketName}})
	if err != nil {
		t.Fatal(err)
	}
	app, err := startDemoApp(aliOSSBundle{Source: fromCDN}, uppyBundle{Source: fromCDN, Version: uppyVersion}, emu, "")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()

	state := func(method, path string) bool {
		t.Helper()
		code, _, body := do(t, method, app.URL+path, nil, nil)
		var st struct{ Paused *bool }
		if err := json.Unmarshal(body, &st); code != 200 || err != nil || st.Paused == nil {
			t.Fatalf("%s %s: %d %s", method, path, code, body)
		}
		return *st.Paused
	}
	deliver := func(key, object string) (int, []byte) {
		t.Helper()
		h := http.Header{"X-Oss-Callback-Verified": {"true"}}
		if key != "" {
			h.Set("Idempotency-Key", key)
		}
		code, hdr, body := do(t, http.MethodPost, app.URL+"/oss/callback", h, strings.NewReader("object="+object))
		if hdr.Get("Content-Type") != "application/json" || hdr.Get("Content-Length") == "" {
			t.Errorf("callback answer headers %v: want JSON with a Content-Length", hdr)
		}
		return code, body
	}
	recorded := func() []demoCallback {
		t.Helper()
		var list []demoCallback
		_, _, body := do(t, http.MethodGet, app.URL+"/demo/callbacks", nil, nil)
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		return list
	}

	if state(http.MethodGet, "/demo/state") {
		t.Fatal("the app starts paused")
	}
	if code, _, _ := get(t, app.URL+"/demo/pause"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /demo/pause: %d, want 405", code)
	}
	if !state(http.MethodPost, "/demo/pause") || !state(http.MethodGet, "/demo/state") {
		t.Fatal("POST /demo/pause did not pause the app")
	}
	for range 2 {
		code, body := deliver("k1", "uploads/late.png")
		var answer struct{ Error string }
		if err := json.Unmarshal(body, &answer); code != http.StatusServiceUnavailable || err != nil || answer.Error == "" {
			t.Fatalf("paused: %d %s, want 503 with a JSON error", code, body)
		}
	}
	if list := recorded(); len(list) != 0 {
		t.Fatalf("a paused app recorded %+v", list)
	}

	if state(http.MethodPost, "/demo/resume") || state(http.MethodGet, "/demo/state") {
		t.Fatal("POST /demo/resume did not resume the app")
	}
	var answer struct {
		OK       bool
		Callback demoCallback
	}
	code, body := deliver("k1", "uploads/late.png")
	if err := json.Unmarshal(body, &answer); code != 200 || err != nil || !answer.OK ||
		answer.Callback.IdempotencyKey != "k1" || answer.Callback.Attempts != 3 || answer.Callback.Fields["object"] != "uploads/late.png" {
		t.Fatalf("resumed: %d %s", code, body)
	}
	// Delivered again (its answer lost on the way, say): the same answer,
	// nothing new recorded.
	code, body = deliver("k1", "uploads/late.png")
	if err := json.Unmarshal(body, &answer); code != 200 || err != nil || !answer.OK || answer.Callback.Attempts != 3 {
		t.Fatalf("delivered again: %d %s", code, body)
	}
	// A callback without an Idempotency-Key is its own first attempt.
	if code, body := deliver("", "uploads/now.png"); code != 200 {
		t.Fatalf("without a key: %d %s", code, body)
	}
	list := recorded()
	if len(list) != 2 || list[0].IdempotencyKey != "k1" || list[0].Attempts != 3 ||
		list[1].IdempotencyKey != "" || list[1].Attempts != 1 || list[1].Fields["object"] != "uploads/now.png" {
		t.Fatalf("recorded %+v", list)
	}
	if _, _, raw := get(t, app.URL+"/demo/callbacks"); !strings.Contains(raw, `"idempotencyKey":"k1"`) || !strings.Contains(raw, `"attempts":3`) {
		t.Errorf("callbacks list %s", raw)
	}
}
