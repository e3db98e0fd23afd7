package caddyoss

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

func TestBindingRoundTripAndTamper(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	exp := time.Unix(2000000000, 0)
	vars := map[string]string{"user": "alice", "team": "a b"}
	for _, tc := range []struct {
		kind  byte
		scope string
	}{{bindingExactKey, "u/alice/1.png"}, {bindingPrefix, "u/alice/"}, {bindingSTS, "u/alice/"}} {
		v := encodeBinding(key, tc.kind, "bkt", tc.scope, exp, vars)
		b, err := parseBinding(v)
		if err != nil || b.kind != tc.kind || b.expiry != exp.Unix() {
			t.Fatalf("%q: %+v %v", v, b, err)
		}
		if tc.kind != bindingExactKey && b.scope != tc.scope {
			t.Errorf("scope %q", b.scope)
		}
		if tc.kind == bindingExactKey && b.scope != "" {
			t.Errorf("an exact-key binding carries its key: %q", v)
		}
		good := bindingMAC(key, tc.kind, "bkt", tc.scope, b.expiry, vars)
		if string(good) != string(b.mac) {
			t.Fatal("MAC does not round-trip")
		}
		// Every input of the MAC matters.
		others := map[string][]byte{
			"key":    bindingMAC([]byte(strings.Repeat("K", 32)), tc.kind, "bkt", tc.scope, b.expiry, vars),
			"kind":   bindingMAC(key, 'x', "bkt", tc.scope, b.expiry, vars),
			"bucket": bindingMAC(key, tc.kind, "bkt2", tc.scope, b.expiry, vars),
			"scope":  bindingMAC(key, tc.kind, "bkt", tc.scope+"x", b.expiry, vars),
			"expiry": bindingMAC(key, tc.kind, "bkt", tc.scope, b.expiry+1, vars),
			"var":    bindingMAC(key, tc.kind, "bkt", tc.scope, b.expiry, map[string]string{"user": "bob", "team": "a b"}),
			"no var": bindingMAC(key, tc.kind, "bkt", tc.scope, b.expiry, map[string]string{"user": "alice"}),
			"extra":  bindingMAC(key, tc.kind, "bkt", tc.scope, b.expiry, map[string]string{"user": "alice", "team": "a b", "x": ""}),
			"shift":  bindingMAC(key, tc.kind, "bkt", tc.scope, b.expiry, map[string]string{"user": "alice\x00team", "": "a b"}),
		}
		for name, m := range others {
			if string(m) == string(good) {
				t.Errorf("%c: changing the %s keeps the MAC", tc.kind, name)
			}
		}
	}
}

func TestParseBindingRefusals(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	good := encodeBinding(key, bindingPrefix, "bkt", "u/", time.Unix(2000000000, 0), nil)
	parts := strings.Split(good, ".")
	mac := parts[4]
	for _, v := range []string{
		"", "1", good + ".x", "2" + good[1:], "1.z.2000000000.dS8." + mac, "1.pp.2000000000.dS8." + mac,
		"1.p.-5.dS8." + mac, "1.p.x.dS8." + mac, "1.p.2000000000.***." + mac, "1.p.2000000000.dS8.short",
		"1.k.2000000000.dS8." + mac, // an exact-key binding carries no scope
		"1.p.2000000000.." + mac,    // a prefix binding must
		"1.p.2000000000.dS8." + base64.RawURLEncoding.EncodeToString(make([]byte, 31)),
	} {
		if _, err := parseBinding(v); err == nil {
			t.Errorf("accepted %q", v)
		}
	}
}

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

func TestReplayGuard(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	now := time.Unix(1800000000, 0)
	g := newReplayGuard(st, zap.NewNop(), func() time.Time { return now })
	ctx := context.Background()
	id := callbackID([]byte("/cb\nbody"))

	// 50 concurrent copies: exactly one is delivered.
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := g.claim(ctx, id, now.Add(time.Hour))
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d copies delivered", fresh.Load())
	}
	// Another instance (or this one after a restart) over the same storage.
	g2 := newReplayGuard(st, zap.NewNop(), func() time.Time { return now })
	if ok, _ := g2.claim(ctx, id, now.Add(time.Hour)); ok {
		t.Error("a copy was delivered after a restart")
	}
	// Purge keeps live records and drops expired ones.
	old := callbackID([]byte("old"))
	if ok, _ := g.claim(ctx, old, now.Add(-time.Second)); !ok {
		t.Fatal("claim")
	}
	if n, err := g.purge(ctx); err != nil || n != 1 {
		t.Fatalf("purged %d: %v", n, err)
	}
	if ok, _ := g.claim(ctx, id, now.Add(time.Hour)); ok {
		t.Error("purge dropped a live record")
	}
}

func TestCanonicalRoutePath(t *testing.T) {
	want := canonicalRoutePath("/api/any")
	if want != "/api/any" {
		t.Fatalf("canonical %q", want)
	}
	for _, v := range callbackPathVariants("/api/any") {
		if got := canonicalRoutePath(v); got != want {
			t.Errorf("%q → %q", v, got)
		}
	}
	for _, p := range []string{"/api/anyx", "/api", "/api/any.json", "/api/x/any", "/", "/api/any/x"} {
		if canonicalRoutePath(p) == want {
			t.Errorf("%q treated as the callback path", p)
		}
	}
}

// callbackPathVariants generates spellings of p that a router or upstream
// may treat as p: case, slashes, dot segments, ';' parameters, control
// bytes, backslashes and percent-encoding (once and twice) of each byte.
func callbackPathVariants(p string) []string {
	var out []string
	add := func(s string) { out = append(out, s) }
	add(strings.ToUpper(p))
	for i := 1; i < len(p); i++ {
		if c := p[i]; c >= 'a' && c <= 'z' {
			add(p[:i] + strings.ToUpper(string(c)) + p[i+1:])
		}
	}
	add(p + "/")
	add(p + "//")
	add("/" + p)
	add(p + "/.")
	add(p + "/./")
	add(p + ".")
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		add(p[:i] + "/" + p[i:])
		add(p[:i] + "/." + p[i:])
		add(p[:i] + "/x/.." + p[i:])
		add(p[:i] + `\` + p[i+1:])
		add(p[:i] + "%2f" + p[i+1:])
		add(p[:i] + "%2F" + p[i+1:])
		add(p[:i] + "%5c" + p[i+1:])
		add(p[:i] + "%252f" + p[i+1:])
	}
	for _, suffix := range []string{";", ";x", ";jsessionid=1", "%00", "%00.png", "%0a", "%0d%0a", "%09", "%20", "%2e", "%3b", "%3bx", "%2f", "%252f"} {
		add(p + suffix)
	}
	for i := 1; i < len(p); i++ {
		enc := fmt.Sprintf("%%%02X", p[i])
		add(p[:i] + enc + p[i+1:])
		add(p[:i] + strings.ToLower(enc) + p[i+1:])
		add(p[:i] + "%25" + enc[1:] + p[i+1:])
	}
	return out
}

// isCallbackRequest, with its allocation-free path for plain paths, agrees
// with canonicalRoutePath on every spelling, as the server parses it.
func TestIsCallbackRequestAgrees(t *testing.T) {
	h := &Handler{CallbackPath: "/api/any", callbackCanon: canonicalRoutePath("/api/any")}
	targets := append(callbackPathVariants("/api/any"), "/api/any", "/api/any?x=1", "/API/ANY/?a=b", "/api/anyx", "/api",
		"/", "/api/any.json", "/other/api/any", "/api/any-1", "/api_/any", "/api/any~")
	for _, target := range targets {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("POST " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			continue // the server would refuse it before any handler
		}
		want := canonicalRoutePath(r.URL.Path) == h.callbackCanon || canonicalRoutePath(r.RequestURI) == h.callbackCanon ||
			(r.URL.RawPath != "" && canonicalRoutePath(r.URL.RawPath) == h.callbackCanon)
		if got := h.isCallbackRequest(r); got != want {
			t.Errorf("%q: isCallbackRequest %v, canonical form says %v", target, got, want)
		}
	}
}
