package caddyoss

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-oss/caddy-oss/internal/sts/ststest"
)

func TestSanitizeSessionName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web-alice", "web-alice"},
		{"a.b@c_d-E9", "a.b@c_d-E9"},
		{"web alice", "web_alice"},
		{"web-ä", "web-__"},
		{"x", "x_"},
		{"", "__"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64)},
		{strings.Repeat("a", 63) + "/b", strings.Repeat("a", 63) + "_"},
	} {
		if got := sanitizeSessionName(tc.in); got != tc.want {
			t.Errorf("sanitizeSessionName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !validSessionName(sanitizeSessionName(tc.in)) {
			t.Errorf("sanitizeSessionName(%q) is not a valid session name", tc.in)
		}
	}
}

func TestSTSRoute(t *testing.T) {
	f := ststest.NewServer(t)
	h := testHandler(t, func(h *Handler) {
		h.KeyPrefix = "u/{http.request.header.X-User}/"
		h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", SessionName: "web-{http.request.header.X-User}", Endpoint: f.URL}
	})
	call := func() (*httptest.ResponseRecorder, map[string]string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/oss/sts", nil)
		req.Header.Set("X-User", "alice smith")
		if err := h.ServeHTTP(rec, withReplacer(req), nextMustNotRun(t)); err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec, body
	}
	rec, body := call()
	if rec.Code != 200 || body["AccessKeyId"] != "STS.key1" || body["SecurityToken"] != "CAIStoken1" || body["AccessKeySecret"] != "secret1" ||
		body["Bucket"] != "example-bucket" || body["Region"] != "cn-hangzhou" || body["Prefix"] != "u/alice smith/" ||
		body["Endpoint"] != "https://example-bucket.oss-cn-hangzhou.aliyuncs.com" || body["Expiration"] == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if f.LastQuery["RoleSessionName"] != "web-alice_smith" ||
		!strings.Contains(f.LastQuery["Policy"], `"Resource":["acs:oss:*:*:example-bucket/u/alice smith/*"]`) {
		t.Errorf("AssumeRole %v", f.LastQuery)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
	}

	// STS down and nothing cached for this user: 503, Retry-After, no details.
	f.Set(func(f *ststest.Server) { f.Mode = ststest.Down })
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/oss/sts", nil)
	req.Header.Set("X-User", "bob")
	if err := h.ServeHTTP(rec, withReplacer(req), nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || strings.Contains(rec.Body.String(), "InternalError") ||
		!strings.Contains(rec.Body.String(), `"error":"temporary credentials are unavailable; retry later"`) {
		t.Errorf("down: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// alice's credentials are cached and still fresh.
	if rec, body := call(); rec.Code != 200 || body["AccessKeyId"] != "STS.key1" {
		t.Errorf("cached: %d %s", rec.Code, rec.Body)
	}
}

func BenchmarkSTSRoute(b *testing.B) {
	h := benchSTSHandler(b)
	benchRoute(b, h, "/oss/sts")
}

// benchSTSHandler is an STS route whose every request after the first is a
// cache hit: the test fails if it calls AssumeRole more than once.
func benchSTSHandler(b *testing.B) *Handler {
	f := ststest.NewServer(b)
	h := testHandler(b, func(h *Handler) {
		h.KeyPrefix = "uploads/{http.request.header.X-User}/"
		h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", Endpoint: f.URL}
	})
	h.logger = zap.NewNop()
	b.Cleanup(func() {
		if n := f.Calls.Load(); n > 1 {
			b.Errorf("AssumeRole calls = %d, want at most 1", n)
		}
	})
	return h
}

// TestSTSRouteKeptAnswers checks the answers the STS route keeps with its
// cached credentials: users interleaved each get their own prefix and
// credentials, the same bytes while those are cached, and the new
// credentials as soon as a refresh replaces them.
func TestSTSRouteKeptAnswers(t *testing.T) {
	f := ststest.NewServer(t)
	h := testHandler(t, func(h *Handler) {
		h.KeyPrefix = "u/{http.request.header.X-User}/"
		h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", Endpoint: f.URL,
			Duration: caddy.Duration(time.Hour), RefreshBefore: caddy.Duration(5 * time.Minute)}
	})
	clock := &testClock{t: time.Now()}
	h.sts.Now = clock.now
	f.Set(func(f *ststest.Server) { f.Expiration = clock.now().Add(time.Hour) })
	call := func(user string) (string, map[string]string) {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/oss/sts", nil)
		req.Header.Set("X-User", user)
		if err := h.ServeHTTP(rec, withReplacer(req), nextMustNotRun(t)); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %v %s", user, rec.Code, err, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", user, rec.Header())
		}
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v %s", user, err, rec.Body)
		}
		return rec.Body.String(), body
	}
	// Spellings of one name that are other users, each with a prefix of
	// its own: none may get another's kept answer.
	users := []string{"alice", "bob", "carol", "Alice", "ALICE", "alice ", "al ice", "alicé", "alice2",
		"alice%2F", "alice.", "a", "ali", "bob-alice"}
	first := map[string]string{}
	keyOf := map[string]string{}
	for round := range 4 {
		for _, u := range users {
			raw, body := call(u)
			if body["Prefix"] != "u/"+u+"/" {
				t.Fatalf("round %d, %s: prefix %q", round, u, body["Prefix"])
			}
			if round == 0 {
				first[u], keyOf[u] = raw, body["AccessKeyId"]
				continue
			}
			if raw != first[u] {
				t.Errorf("round %d, %s: answer changed while cached:\n%s\n%s", round, u, raw, first[u])
			}
		}
	}
	owner := map[string]string{}
	for u, k := range keyOf {
		if other, ok := owner[k]; ok {
			t.Fatalf("%q and %q got the same credentials %s", u, other, k)
		}
		owner[k] = u
	}
	if n := f.Calls.Load(); n != int64(len(users)) {
		t.Fatalf("%d AssumeRole calls for %d users", n, len(users))
	}

	// Into alice's refresh window: her cached answer is still served while
	// the refresh runs, then the new credentials are.
	clock.add(56 * time.Minute)
	f.Set(func(f *ststest.Server) { f.Expiration = clock.now().Add(time.Hour) })
	if raw, _ := call("alice"); raw != first["alice"] {
		t.Errorf("refresh window: %s", raw)
	}
	ststest.WaitFor(t, func() bool { return h.sts.Idle() && f.Calls.Load() == int64(len(users))+1 })
	n := len(users) + 1
	for range 2 {
		_, body := call("alice")
		if body["AccessKeyId"] != fmt.Sprintf("STS.key%d", n) || body["SecurityToken"] != fmt.Sprintf("CAIStoken%d", n) ||
			body["AccessKeySecret"] != fmt.Sprintf("secret%d", n) ||
			body["Prefix"] != "u/alice/" {
			t.Fatalf("after refresh: %v", body)
		}
	}
	if _, body := call("bob"); body["AccessKeyId"] != keyOf["bob"] {
		t.Errorf("bob after alice's refresh: %v", body)
	}
}

// Many AssumeRole calls at once, from two handlers on one STS endpoint,
// run under -race without a data race in the SDK's shared HTTP client, and
// each user gets credentials of its own.
func TestSTSConcurrentAssumeRole(t *testing.T) {
	f := ststest.NewServer(t)
	hold := make(chan struct{})
	f.Set(func(f *ststest.Server) { f.Hold = hold })
	var handlers []*Handler
	for range 2 {
		handlers = append(handlers, testHandler(t, func(h *Handler) {
			h.KeyPrefix = "u/{http.request.header.X-User}/"
			h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", Endpoint: f.URL}
		}))
	}
	const users = 24
	keys := make([]string, 2*users)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/oss/sts", nil)
			req.Header.Set("X-User", fmt.Sprintf("user%d", i%users))
			if err := handlers[i/users].ServeHTTP(rec, withReplacer(req), nextMustNotRun(t)); err != nil || rec.Code != 200 {
				t.Errorf("%d: %d %v %s", i, rec.Code, err, rec.Body)
				return
			}
			var body map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			keys[i], _ = body["AccessKeyId"].(string)
		})
	}
	time.Sleep(100 * time.Millisecond) // the calls pile up on the held answers
	close(hold)
	wg.Wait()
	seen := map[string]bool{}
	for i, k := range keys {
		if k == "" || seen[k] {
			t.Errorf("request %d got credentials %q, not its own", i, k)
		}
		seen[k] = true
	}
}
