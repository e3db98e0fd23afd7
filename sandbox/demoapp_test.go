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
		app, err := startDemoApp(tc.bundle, emu)
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
