package caddyoss

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/callback/callbacktest"
)

// The stored key is made once, whoever asks first, and every source over
// the same storage (another instance) reads the same key.
func TestBindingKeySharedThroughStorage(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := (&bindingKeySource{storage: st}).get(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i := range keys {
		if len(keys[i]) != minBindingKeyBytes || string(keys[i]) != string(keys[0]) {
			t.Fatalf("instance %d got another key", i)
		}
	}
	// A configured key wins over storage.
	k, _ := (&bindingKeySource{static: []byte("configured"), storage: st}).get(context.Background())
	if string(k) != "configured" {
		t.Errorf("got %q", k)
	}
	// A damaged stored key is an error, not a silent new key.
	_ = st.Store(context.Background(), bindingKeyStorageKey, []byte("zz"))
	if _, err := (&bindingKeySource{storage: st}).get(context.Background()); err == nil {
		t.Error("a damaged key was accepted")
	}
}

// isCallbackRequest, with its allocation-free path for plain paths, agrees
// with callback.CanonicalPath on every spelling, as the server parses it.
func TestIsCallbackRequestAgrees(t *testing.T) {
	h := &Handler{CallbackPath: "/api/any", callbackCanon: callback.CanonicalPath("/api/any")}
	targets := append(callbacktest.PathVariants("/api/any"), "/api/any", "/api/any?x=1", "/API/ANY/?a=b", "/api/anyx", "/api",
		"/", "/api/any.json", "/other/api/any", "/api/any-1", "/api_/any", "/api/any~")
	for _, target := range targets {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("POST " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			continue // the server would refuse it before any handler
		}
		want := callback.CanonicalPath(r.URL.Path) == h.callbackCanon || callback.CanonicalPath(r.RequestURI) == h.callbackCanon ||
			(r.URL.RawPath != "" && callback.CanonicalPath(r.URL.RawPath) == h.callbackCanon)
		if got := h.isCallbackRequest(r); got != want {
			t.Errorf("%q: isCallbackRequest %v, canonical form says %v", target, got, want)
		}
	}
}
