package caddyoss

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/callback/callbacktest"
)

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
