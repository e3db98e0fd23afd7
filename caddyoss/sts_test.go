package caddyoss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// fakeSTS answers AssumeRole as STS does (protocol §5.5/§5.6), counting calls.
type fakeSTS struct {
	srv        *httptest.Server
	calls      atomic.Int64
	mu         sync.Mutex
	mode       string        // "", "down", "throttled"
	hold       chan struct{} // when non-nil, answers wait for it to close
	expiration time.Time
	lastQuery  map[string]string
}

func newFakeSTS(t testing.TB) *fakeSTS {
	f := &fakeSTS{expiration: time.Now().Add(time.Hour)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	_ = r.ParseForm()
	f.mu.Lock()
	mode, hold, exp := f.mode, f.hold, f.expiration
	f.lastQuery = map[string]string{}
	for k := range r.Form {
		f.lastQuery[k] = r.Form.Get(k)
	}
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	w.Header().Set("Content-Type", "application/json")
	q := r.Form
	switch {
	case mode == "down":
		w.WriteHeader(500)
		fmt.Fprint(w, `{"RequestId":"r","HostId":"sts.aliyuncs.com","Code":"InternalError","Message":"STS Server Internal Error happened."}`)
		return
	case mode == "throttled":
		w.WriteHeader(400)
		fmt.Fprint(w, `{"RequestId":"r","HostId":"sts.aliyuncs.com","Code":"Throttling.User","Message":"Request was denied due to user flow control."}`)
		return
	case q.Get("Action") != "AssumeRole" || q.Get("RoleArn") == "" || q.Get("RoleSessionName") == "" ||
		q.Get("Signature") == "" || q.Get("AccessKeyId") != "testid" || q.Get("DurationSeconds") == "" || q.Get("Policy") == "":
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"RequestId":"r","HostId":"sts.aliyuncs.com","Code":"MissingParameter","Message":"bad request %v"}`, q)
		return
	}
	fmt.Fprintf(w, `{"RequestId":"6894B13B","AssumedRoleUser":{"Arn":"%s/%s","AssumedRoleId":"1:%s"},"Credentials":{"AccessKeyId":"STS.key%d","AccessKeySecret":"secret%d","SecurityToken":"CAIStoken%d","Expiration":"%s"}}`,
		q.Get("RoleArn"), q.Get("RoleSessionName"), q.Get("RoleSessionName"), n, n, n, exp.UTC().Format("2006-01-02T15:04:05Z"))
}

func (f *fakeSTS) set(fn func(f *fakeSTS)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

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

// newTestBroker builds a broker with the real STS SDK client pointed at f.
func newTestBroker(t testing.TB, f *fakeSTS, cacheSize int) (*stsBroker, *testClock) {
	t.Helper()
	src, err := newCredentialSource("testid", "testsecret")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := src.credential()
	if err != nil {
		t.Fatal(err)
	}
	cfg := STSConfig{RoleARN: "acs:ram::123:role/up", Duration: caddy.Duration(time.Hour),
		RefreshBefore: caddy.Duration(5 * time.Minute), Endpoint: f.srv.URL, CacheSize: cacheSize}
	b, err := newSTSBroker(cfg, "cn-hangzhou", cred, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now()}
	b.now = clock.now
	return b, clock
}

func TestSTSConcurrentMissesMakeOneCall(t *testing.T) {
	f := newFakeSTS(t)
	hold := make(chan struct{})
	f.set(func(f *fakeSTS) { f.hold = hold })
	b, _ := newTestBroker(t, f, 16)
	const n = 200
	results := make(chan stsCredentials, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b.get(context.Background(), "alice", `{"p":1}`)
			if err != nil {
				errs <- err
				return
			}
			results <- c
		}()
	}
	// Wait until the single call has reached the fake, then release it.
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("AssumeRole calls = %d, want 1", got)
	}
	count := 0
	for c := range results {
		count++
		if c.AccessKeyID != "STS.key1" || c.SecurityToken != "CAIStoken1" {
			t.Errorf("credentials %+v", c)
		}
	}
	if count != n {
		t.Errorf("%d results", count)
	}
	q := f.lastQuery
	if q["RoleSessionName"] != "alice" || q["Policy"] != `{"p":1}` || q["DurationSeconds"] != "3600" || q["RoleArn"] != "acs:ram::123:role/up" {
		t.Errorf("AssumeRole parameters %v", q)
	}
}

func TestSTSCacheKeys(t *testing.T) {
	f := newFakeSTS(t)
	b, _ := newTestBroker(t, f, 16)
	ctx := context.Background()
	a1, _ := b.get(ctx, "alice", "p1")
	a2, _ := b.get(ctx, "alice", "p1")
	bob, _ := b.get(ctx, "bob", "p1")
	p2, _ := b.get(ctx, "alice", "p2")
	if !sameCreds(a1, a2) || sameCreds(a1, bob) || sameCreds(a1, p2) || sameCreds(bob, p2) || f.calls.Load() != 3 {
		t.Errorf("calls %d, a1 %v a2 %v bob %v p2 %v", f.calls.Load(), a1, a2, bob, p2)
	}
	// The route logs where credentials came from.
	if a1.source != stsSourceAssumeRole || a2.source != stsSourceCache || bob.source != stsSourceAssumeRole {
		t.Errorf("sources %q %q %q", a1.source, a2.source, bob.source)
	}
}

// sameCreds compares credentials, not where get found them.
func sameCreds(a, b stsCredentials) bool {
	a.source, b.source = "", ""
	return a == b
}

func TestSTSRefreshAhead(t *testing.T) {
	f := newFakeSTS(t)
	b, clock := newTestBroker(t, f, 16)
	f.set(func(f *fakeSTS) { f.expiration = clock.now().Add(time.Hour) })
	ctx := context.Background()
	first, err := b.get(ctx, "s", "p")
	if err != nil {
		t.Fatal(err)
	}
	// Inside the refresh window the cached credential is served at once and
	// a refresh starts.
	f.set(func(f *fakeSTS) { f.expiration = clock.now().Add(2 * time.Hour) })
	clock.add(56 * time.Minute)
	c, err := b.get(ctx, "s", "p")
	if err != nil || !sameCreds(c, first) || c.source != stsSourceCache {
		t.Fatalf("refresh window: %v %v", c, err)
	}
	waitFor(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.inflight) == 0 && f.calls.Load() == 2
	})
	c, err = b.get(ctx, "s", "p")
	if err != nil || c.AccessKeyID != "STS.key2" {
		t.Fatalf("after refresh: %v %v", c, err)
	}
	if f.calls.Load() != 2 {
		t.Errorf("calls = %d", f.calls.Load())
	}
}

func TestSTSExpiredEntryIsRefetched(t *testing.T) {
	f := newFakeSTS(t)
	b, clock := newTestBroker(t, f, 16)
	f.set(func(f *fakeSTS) { f.expiration = clock.now().Add(time.Hour) })
	ctx := context.Background()
	if _, err := b.get(ctx, "s", "p"); err != nil {
		t.Fatal(err)
	}
	clock.add(2 * time.Hour)
	f.set(func(f *fakeSTS) { f.expiration = clock.now().Add(time.Hour) })
	c, err := b.get(ctx, "s", "p")
	if err != nil || c.AccessKeyID != "STS.key2" {
		t.Fatalf("%v %v", c, err)
	}
}

func TestSTSDownServesValidCachedCredential(t *testing.T) {
	f := newFakeSTS(t)
	b, clock := newTestBroker(t, f, 16)
	f.set(func(f *fakeSTS) { f.expiration = clock.now().Add(time.Hour) })
	ctx := context.Background()
	first, _ := b.get(ctx, "s", "p")
	f.set(func(f *fakeSTS) { f.mode = "down" })
	clock.add(58 * time.Minute) // in the refresh window, still valid
	for i := 0; i < 3; i++ {
		c, err := b.get(ctx, "s", "p")
		if err != nil || !sameCreds(c, first) {
			t.Fatalf("get %d: %v %v", i, c, err)
		}
		waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.inflight) == 0 })
	}
	if f.calls.Load() < 2 {
		t.Errorf("no refresh was attempted")
	}
}

func TestSTSDownWithoutCacheFails(t *testing.T) {
	for _, mode := range []string{"down", "throttled"} {
		t.Run(mode, func(t *testing.T) {
			f := newFakeSTS(t)
			b, clock := newTestBroker(t, f, 16)
			f.set(func(f *fakeSTS) { f.mode = mode })
			_, err := b.get(context.Background(), "s", "p")
			if !errors.Is(err, errSTSUnavailable) {
				t.Fatalf("error %v", err)
			}
			// A credential past its safety margin is not served either.
			f.set(func(f *fakeSTS) { f.mode = ""; f.expiration = clock.now().Add(time.Hour) })
			if _, err := b.get(context.Background(), "s2", "p"); err != nil {
				t.Fatal(err)
			}
			f.set(func(f *fakeSTS) { f.mode = mode })
			clock.add(time.Hour - 10*time.Second)
			if _, err := b.get(context.Background(), "s2", "p"); !errors.Is(err, errSTSUnavailable) {
				t.Fatalf("nearly expired credential served: %v", err)
			}
		})
	}
}

func TestSTSCacheIsBounded(t *testing.T) {
	f := newFakeSTS(t)
	b, _ := newTestBroker(t, f, 2)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c"} {
		if _, err := b.get(ctx, s, "p"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.get(ctx, "c", "p"); err != nil || f.calls.Load() != 3 {
		t.Fatalf("c should be cached: calls %d", f.calls.Load())
	}
	if _, err := b.get(ctx, "a", "p"); err != nil || f.calls.Load() != 4 {
		t.Fatalf("a should have been evicted: calls %d", f.calls.Load())
	}
	if len(b.entries) != 2 || b.lru.Len() != 2 {
		t.Errorf("cache holds %d entries", len(b.entries))
	}
}

func TestSTSWaiterCancellation(t *testing.T) {
	f := newFakeSTS(t)
	hold := make(chan struct{})
	f.set(func(f *fakeSTS) { f.hold = hold })
	b, _ := newTestBroker(t, f, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.get(ctx, "s", "p"); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	close(hold)
	// The shared call still completes for later callers.
	if c, err := b.get(context.Background(), "s", "p"); err != nil || c.AccessKeyID == "" {
		t.Fatalf("%v %v", c, err)
	}
}

func TestUploadPolicy(t *testing.T) {
	tests := []struct{ bucket, prefix, want string }{
		{"examplebucket", "user/eric/", `{"Statement":[{"Action":["oss:PutObject","oss:InitiateMultipartUpload","oss:UploadPart","oss:CompleteMultipartUpload","oss:AbortMultipartUpload","oss:ListParts"],"Effect":"Allow","Resource":["acs:oss:*:*:examplebucket/user/eric/*"]}],"Version":"1"}`},
		{"b", `q"<&>/`, `{"Statement":[{"Action":["oss:PutObject","oss:InitiateMultipartUpload","oss:UploadPart","oss:CompleteMultipartUpload","oss:AbortMultipartUpload","oss:ListParts"],"Effect":"Allow","Resource":["acs:oss:*:*:b/q\"<&>/*"]}],"Version":"1"}`},
	}
	for _, tc := range tests {
		got, err := uploadPolicy(tc.bucket, tc.prefix)
		if err != nil || got != tc.want {
			t.Errorf("uploadPolicy(%q, %q) = %s, %v", tc.bucket, tc.prefix, got, err)
		}
		var v any
		if json.Unmarshal([]byte(got), &v) != nil {
			t.Errorf("not JSON: %s", got)
		}
	}
	if _, err := uploadPolicy("b", strings.Repeat("x", 2000)); err == nil {
		t.Error("an oversized policy was accepted")
	}
}

func TestSTSEndpoint(t *testing.T) {
	tests := []struct{ in, proto, host string }{
		{"sts.cn-hangzhou.aliyuncs.com", "https", "sts.cn-hangzhou.aliyuncs.com"},
		{"http://127.0.0.1:9999", "http", "127.0.0.1:9999"},
		{"https://sts.example.com/", "https", "sts.example.com"},
	}
	for _, tc := range tests {
		p, h, err := stsEndpoint(tc.in)
		if err != nil || p != tc.proto || h != tc.host {
			t.Errorf("stsEndpoint(%q) = %q %q %v", tc.in, p, h, err)
		}
	}
	if _, _, err := stsEndpoint("http://x/path"); err == nil {
		t.Error("a path was accepted")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func BenchmarkSTSCacheHit(b *testing.B) {
	br, _ := newTestBroker(b, newFakeSTS(b), 16)
	if _, err := br.get(context.Background(), "s", "p"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.get(context.Background(), "s", "p"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestSTSRoute(t *testing.T) {
	f := newFakeSTS(t)
	h := testHandler(t, func(h *Handler) {
		h.KeyPrefix = "u/{http.request.header.X-User}/"
		h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", SessionName: "web-{http.request.header.X-User}", Endpoint: f.srv.URL}
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
	if f.lastQuery["RoleSessionName"] != "web-alice_smith" ||
		!strings.Contains(f.lastQuery["Policy"], `"Resource":["acs:oss:*:*:example-bucket/u/alice smith/*"]`) {
		t.Errorf("AssumeRole %v", f.lastQuery)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
	}

	// STS down and nothing cached for this user: 503, Retry-After, no details.
	f.set(func(f *fakeSTS) { f.mode = "down" })
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
	f := newFakeSTS(b)
	h := testHandler(b, func(h *Handler) {
		h.KeyPrefix = "uploads/{http.request.header.X-User}/"
		h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", Endpoint: f.srv.URL}
	})
	h.logger = zap.NewNop()
	b.Cleanup(func() {
		if n := f.calls.Load(); n > 1 {
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
	f := newFakeSTS(t)
	h := testHandler(t, func(h *Handler) {
		h.KeyPrefix = "u/{http.request.header.X-User}/"
		h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", Endpoint: f.srv.URL,
			Duration: caddy.Duration(time.Hour), RefreshBefore: caddy.Duration(5 * time.Minute)}
	})
	clock := &testClock{t: time.Now()}
	h.sts.now = clock.now
	f.set(func(f *fakeSTS) { f.expiration = clock.now().Add(time.Hour) })
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
	if n := f.calls.Load(); n != int64(len(users)) {
		t.Fatalf("%d AssumeRole calls for %d users", n, len(users))
	}

	// Into alice's refresh window: her cached answer is still served while
	// the refresh runs, then the new credentials are.
	clock.add(56 * time.Minute)
	f.set(func(f *fakeSTS) { f.expiration = clock.now().Add(time.Hour) })
	if raw, _ := call("alice"); raw != first["alice"] {
		t.Errorf("refresh window: %s", raw)
	}
	waitFor(t, func() bool {
		h.sts.mu.Lock()
		defer h.sts.mu.Unlock()
		return len(h.sts.inflight) == 0 && f.calls.Load() == int64(len(users))+1
	})
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
	f := newFakeSTS(t)
	hold := make(chan struct{})
	f.set(func(f *fakeSTS) { f.hold = hold })
	var handlers []*Handler
	for range 2 {
		handlers = append(handlers, testHandler(t, func(h *Handler) {
			h.KeyPrefix = "u/{http.request.header.X-User}/"
			h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", Endpoint: f.srv.URL}
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
