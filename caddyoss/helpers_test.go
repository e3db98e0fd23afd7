package caddyoss

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
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
