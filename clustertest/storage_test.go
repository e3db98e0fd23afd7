// Package clustertest runs oss_upload instances that share nothing but
// Caddy's storage, with the storage modules a cluster uses: the file system
// and a real redis-server (through caddy-storage-redis, which only this
// test binary links; the plugin's own package does not).
package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/pberkel/caddy-storage-redis"
	"github.com/redis/go-redis/v9"

	_ "github.com/caddy-oss/caddy-oss/caddyoss"
	"github.com/caddy-oss/caddy-oss/internal/redistest"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

// Ports of their own, so this package's Caddy and caddyoss's tests can run
// at the same time.
const (
	adminPort  = 2998
	signerPort = 9180
	verifyPort = 9181
)

// startEmulator runs ossemu with the cl-bucket bucket and its account for
// the test, and writes its callback public key to a file for trusted_key.
func startEmulator(t *testing.T) (*ossemu.Emulator, string) {
	t.Helper()
	emu, err := ossemu.Start(ossemu.Options{Buckets: []string{"cl-bucket"}, AccessKeys: map[string]string{"cl-ak": "cl-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	keyFile := filepath.Join(t.TempDir(), "ossemu.pem")
	if err := os.WriteFile(keyFile, emu.CallbackPublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return emu, keyFile
}

type appCall struct {
	verified string
	body     string
}

// A signer and a verifier that share only storage: the verifier accepts the
// signer's bindings (the key is created once in storage), and a callback
// reaches the app once, whichever instance it is sent to and across a
// reload.
func TestSharedStorage(t *testing.T) {
	for _, kind := range []string{"file_system", "redis"} {
		t.Run(kind, func(t *testing.T) {
			var storage string
			var inspect func() []string
			switch kind {
			case "file_system":
				dir := t.TempDir()
				storage = "storage file_system " + dir
				inspect = func() []string {
					var out []string
					_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
						if err == nil && !d.IsDir() && strings.Contains(p, "oss_upload") {
							out = append(out, p)
						}
						return nil
					})
					return out
				}
			case "redis":
				addr := redistest.Start(t).Addr
				storage = "storage " + redisModule(addr)
				inspect = func() []string {
					c := redis.NewClient(&redis.Options{Addr: addr})
					defer c.Close()
					keys, _ := c.Keys(context.Background(), "*oss_upload*").Result()
					return keys
				}
			}
			sharedStorage(t, storage, inspect)
		})
	}
}

func sharedStorage(t *testing.T, storage string, inspect func() []string) {
	emu, keyFile := startEmulator(t)
	var mu sync.Mutex
	var calls []appCall
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, appCall{r.Header.Get("X-Oss-Callback-Verified"), string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer app.Close()
	appCalls := func() []appCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]appCall(nil), calls...)
	}

	common := `bucket cl-bucket
		region cn-hangzhou
		endpoint ` + emu.Endpoint() + `
		upload_url ` + emu.BucketURL("cl-bucket") + `
		access_key_id cl-ak
		access_key_secret cl-secret`
	// Two instances of one site: the same oss_upload configuration on two
	// ports, one asked for a policy, the other called back.
	site := common + `
		key_prefix uploads/{http.request.header.X-User}/
		max_size 1KB
		callback {
			url http://localhost:` + fmt.Sprint(verifyPort) + `/oss/callback
			var user {http.request.header.X-User}
			trusted_key ` + keyFile + `
		}`
	config := fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port 9543
	skip_install_trust
	persist_config off
	%s
}
http://localhost:%d {
	oss_upload {
		%s
	}
}
http://localhost:%d {
	oss_upload {
		%s
	}
	reverse_proxy %s
}`, adminPort, signerPort, storage, signerPort, site, verifyPort, site, strings.TrimPrefix(app.URL, "http://"))
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort})
	tester.InitServer(config, "caddyfile")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, "localhost:") {
				addr = "127.0.0.1" + strings.TrimPrefix(addr, "localhost")
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	toOSS := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, emu.Addr())
		}}}

	// The signer issues, OSS stores and calls back the verifier.
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d/oss/post-policy?filename=a.txt&type=text/plain", signerPort), nil)
	req.Header.Set("X-User", "alice")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		URL    string            `json:"url"`
		Key    string            `json:"key"`
		Fields map[string]string `json:"fields"`
	}
	err = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("post-policy: %d %v", resp.StatusCode, err)
	}
	resp, err = postObject(toOSS, p.URL, p.Fields, "a.txt", "shared")
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := appCalls()
	if resp.StatusCode != 200 || string(answer) != `{"ok":true}` || len(got) != 1 || got[0].verified != "true" ||
		!strings.Contains(got[0].body, "user=alice") {
		t.Fatalf("upload: %d %s, app received %+v", resp.StatusCode, answer, got)
	}
	cbs := emu.Callbacks()
	if len(cbs) != 1 {
		t.Fatalf("%d callbacks", len(cbs))
	}
	// The exact callback again, as captured from the emulator's request to
	// the app; headers OSS signs nothing of are taken from a fresh copy.
	replay := func(port int) (int, string) {
		t.Helper()
		emuReq, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/oss/callback", port), strings.NewReader(cbs[0].Body))
		for k, v := range cbs[0].Header {
			emuReq.Header[k] = v
		}
		resp, err := client.Do(emuReq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, port := range []int{verifyPort, signerPort, verifyPort} {
		if status, body := replay(port); status != 200 || body != `{"status":"duplicate"}` {
			t.Errorf("replay to :%d: %d %q", port, status, body)
		}
	}
	// A reload makes new handlers; what they share is in storage.
	tester.InitServer(strings.Replace(config, "max_size 1KB", "max_size 2KB", 2), "caddyfile")
	if status, body := replay(verifyPort); status != 200 || body != `{"status":"duplicate"}` {
		t.Errorf("replay after reload: %d %q", status, body)
	}
	// A handler with another key_prefix is another handler: the binding
	// is not its own.
	tester.InitServer(strings.Replace(config, "key_prefix uploads/", "key_prefix up/", 2), "caddyfile")
	if status, body := replay(verifyPort); status != 403 || !strings.Contains(body, "key_prefix") {
		t.Errorf("replay to another handler: %d %q", status, body)
	}
	if n := len(appCalls()); n != 1 {
		t.Errorf("the app received the callback %d times", n)
	}
	keys := inspect()
	var bindingKey, records int
	for _, k := range keys {
		switch {
		case strings.HasSuffix(k, "oss_upload/callback_binding.key"):
			bindingKey++
		case strings.Contains(k, "oss_upload/events/") && strings.Contains(k, "/done/") && len(k[strings.LastIndex(k, "/")+1:]) == 64:
			records++ // a record, not one of the directory entries Redis storage keeps
		}
	}
	if bindingKey != 1 || records != 1 {
		t.Errorf("storage holds %v", keys)
	}
}
