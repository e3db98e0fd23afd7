package caddyoss

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

type handlerFunc func(http.ResponseWriter, *http.Request) error

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

func nextMustNotRun(t *testing.T) handlerFunc {
	return func(http.ResponseWriter, *http.Request) error {
		t.Error("next handler was called")
		return nil
	}
}

// testHandler provisions a handler with explicit credentials; edit may
// change the configuration first.
func testHandler(t testing.TB, edit func(*Handler)) *Handler {
	t.Helper()
	h := &Handler{
		Bucket: "example-bucket", Region: "cn-hangzhou",
		AccessKeyID: "testid", AccessKeySecret: "testsecret",
	}
	h.storage = &certmagic.FileStorage{Path: t.TempDir()}
	if edit != nil {
		edit(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	t.Cleanup(func() { _ = h.Cleanup() }) // before the storage directory goes
	return h
}

func withReplacer(r *http.Request) *http.Request {
	repl := caddy.NewReplacer()
	repl.Map(func(key string) (any, bool) {
		const p = "http.request.header."
		if len(key) > len(p) && key[:len(p)] == p {
			v := r.Header.Get(key[len(p):])
			return v, true
		}
		return nil, false
	})
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

// newTester is caddytest.NewTester whose client retries a GET that meets a
// connection closed under it: right after a config load, a connection can
// land on the server being replaced, which closes it without an answer.
func newTester(t testing.TB) *caddytest.Tester {
	tester := caddytest.NewTester(t)
	tester.Client.Transport = retryGETs{tester.Client.Transport}
	return tester
}

type retryGETs struct{ next http.RoundTripper }

func (rt retryGETs) RoundTrip(r *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := rt.next.RoundTrip(r)
		if err == nil || attempt == 3 || (r.Method != http.MethodGet && r.Method != http.MethodHead) ||
			!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return resp, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startEmu runs ossemu for a test, closed when it ends, and writes its
// callback public key to a file for trusted_key.
func startEmu(t *testing.T, opts ossemu.Options) (*ossemu.Emulator, string) {
	t.Helper()
	emu, err := ossemu.Start(opts)
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

// appSite is a config whose one site, http://localhost:9080, has an
// oss_upload for bucket on emu, signing with keyID and keySecret, then the
// rest of its block (each line after a newline, indented two tabs), in
// front of the app at upstream.
func appSite(t *testing.T, emu *ossemu.Emulator, bucket, keyID, keySecret, rest, upstream string) string {
	return testGlobal(t) + `
http://localhost:9080 {
	oss_upload {
		bucket ` + bucket + `
		region cn-hangzhou
		endpoint ` + emu.Endpoint() + `
		upload_url ` + emu.BucketURL(bucket) + `
		access_key_id ` + keyID + `
		access_key_secret ` + keySecret + rest + `
	}
	reverse_proxy ` + upstream + `
}`
}

// getWhenReady retries a GET until the site answers: Caddy issues an
// internal certificate in the background at startup.
func getWhenReady(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := c.Do(req)
		if err == nil {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// testClock is a clock that tests move on by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
