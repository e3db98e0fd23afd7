package caddyoss

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// The sandbox's generated Caddyfile must adapt, with every route on and
// the callback trusting the emulator's key. (The whole command runs in the
// browser tests, e2e/browser.)
func TestSandboxCaddyfileAdapts(t *testing.T) {
	emu, err := ossemu.Start(ossemu.Options{Buckets: []string{sandboxBucket}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	sb := &sandbox{emu: emu, app: &demoApp{URL: "http://127.0.0.1:1"}}
	opts := sandboxOptions{Listen: "127.0.0.1:8080", MaxSize: "1MB", AllowTypes: "image/*  text/plain", Expires: "15m",
		SignatureVersion: "v4", AccessKeyID: "ak", AccessKeySecret: "sk"}
	cfg := sandboxCaddyfile(opts, "127.0.0.1", "8080", sb, "/tmp/key.pem")
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	var doc struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string
					Routes []json.RawMessage
				}
			}
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	srv, ok := doc.Apps.HTTP.Servers["srv0"]
	if !ok || len(srv.Listen) != 1 || srv.Listen[0] != "127.0.0.1:8080" {
		t.Fatalf("servers %+v", doc.Apps.HTTP.Servers)
	}
	for _, want := range []string{`"handler":"oss_upload"`, `"role_arn":"` + sandboxRole + `"`, `"trusted_keys":["/tmp/key.pem"]`,
		`"upload_url":"` + emu.BucketURL(sandboxBucket) + `"`, `"allow_types":["image/*","text/plain"]`, `"handler":"reverse_proxy"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}
}

func TestSandboxRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", "192.0.2.1:8080", ":8080", "example.com:80"} {
		if _, err := startSandbox(sandboxOptions{Listen: addr}); err == nil || !strings.Contains(err.Error(), "--listen") ||
			!strings.Contains(err.Error(), "loopback") {
			t.Errorf("--listen %s: %v", addr, err)
		}
		if _, err := startSandbox(sandboxOptions{Listen: "127.0.0.1:8080", OSSListen: addr}); err == nil ||
			!strings.Contains(err.Error(), "--oss-listen") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--oss-listen %s: %v", addr, err)
		}
	}
}

func TestDemoApp(t *testing.T) {
	js := filepath.Join(t.TempDir(), "sdk.js")
	if err := os.WriteFile(js, []byte("window.OSS = 1;"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ jsPath, script string }{{"", aliOSSCDN}, {js, "/ali-oss.js"}} {
		app, err := startDemoApp(tc.jsPath)
		if err != nil {
			t.Fatal(err)
		}
		get := func(path string) (int, string) {
			resp, err := http.Get(app.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, page := get("/"); code != 200 || !strings.Contains(page, `<script src="`+tc.script+`"></script>`) {
			t.Errorf("page with %q: %d", tc.jsPath, code)
		}
		if code, body := get("/ali-oss.js"); (tc.jsPath == "" && code != 404) || (tc.jsPath != "" && body != "window.OSS = 1;") {
			t.Errorf("ali-oss.js with %q: %d %s", tc.jsPath, code, body)
		}
		if code, body := get("/app.js"); code != 200 || !strings.Contains(body, "/oss/post-policy") {
			t.Errorf("app.js: %d", code)
		}
		req, _ := http.NewRequest("POST", app.URL+"/oss/callback", strings.NewReader("bucket=sandbox&object=uploads%2Fa.png&size=3"))
		req.Header.Set("X-Oss-Callback-Verified", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var answer struct {
			OK       bool
			Callback demoCallback
		}
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil || !answer.OK || answer.Callback.Fields["object"] != "uploads/a.png" || answer.Callback.Verified != "true" {
			t.Fatalf("callback answer %+v %v", answer, err)
		}
		// A JSON callback body (body_type json) is read as JSON.
		req, _ = http.NewRequest("POST", app.URL+"/oss/callback", strings.NewReader(`{"object":"uploads/b.png","size":7}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil || answer.Callback.Fields["object"] != "uploads/b.png" || answer.Callback.Fields["size"] != "7" {
			t.Fatalf("JSON callback answer %+v %v", answer, err)
		}
		if code, list := get("/demo/callbacks"); code != 200 || !strings.Contains(list, `"object":"uploads/a.png"`) ||
			!strings.Contains(list, `"object":"uploads/b.png"`) {
			t.Errorf("callbacks list: %d %s", code, list)
		}
		app.Close()
	}
}
