package caddyoss

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func TestAnswerNormalized(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantBody   string
	}{
		{"json", 200, `{"ok":true}`, 200, `{"ok":true}`},
		{"201 json", 201, `{"id":1}`, 200, `{"id":1}`},
		{"empty", 204, ``, 200, `{"status":"delivered"}`},
		{"text", 200, `saved`, 200, `{"answer":"saved","status":"delivered"}`},
		{"bom", 200, "\xef\xbb\xbf{\"ok\":1}", 200, `{"ok":1}`},
		{"4xx text", 409, `duplicate upload`, 409, `{"error":"duplicate upload","status":"delivered"}`},
		{"4xx json", 422, `{"error":"bad type"}`, 422, `{"error":"bad type"}`},
		{"too large", 200, `"` + strings.Repeat("x", maxAnswerBytes) + `"`, 200, `{"answer":"the app's answer was larger than 1 MB","status":"delivered"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAnswerRecorder()
			a.WriteHeader(tc.status)
			// in pieces, as a streaming upstream writes
			for b := []byte(tc.body); len(b) > 0; {
				n := min(len(b), 4096)
				_, _ = a.Write(b[:n])
				b = b[n:]
			}
			status, body := a.normalized()
			if status != tc.wantStatus || string(body) != tc.wantBody || !json.Valid(body) {
				t.Errorf("got %d %.80s", status, body)
			}
			rec := httptest.NewRecorder()
			_ = writeAnswer(rec, status, body)
			if rec.Header().Get("Content-Length") != fmt.Sprint(len(body)) || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}

// flakyApp is an upstream whose behaviour the test switches: up, down
// (its listener closed: connection refused), slow, 5xx, 4xx or chunked.
// It records every request it receives.
type flakyApp struct {
	addr string
	mu   sync.Mutex
	mode string
	srv  *http.Server
	got  []secReq
}

func newFlakyApp(t *testing.T) *flakyApp {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &flakyApp{addr: l.Addr().String(), mode: "up"}
	a.serve(l)
	t.Cleanup(func() { a.setMode("down") })
	return a
}

func (a *flakyApp) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		mode := a.mode
		a.got = append(a.got, secReq{r.Method, r.RequestURI, r.Header.Clone(), string(b)})
		a.mu.Unlock()
		switch mode {
		case "slow":
			time.Sleep(1500 * time.Millisecond)
		case "5xx":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		case "4xx":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"the app refuses this upload"}`))
			return
		case "chunked":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"saved":`))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(`true}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"saved":true}`))
	})}
	a.srv = srv
	go func() { _ = srv.Serve(l) }()
}

// setMode switches the app; "down" closes its listener, and leaving "down"
// listens again on the same address.
func (a *flakyApp) setMode(mode string) {
	a.mu.Lock()
	old := a.mode
	a.mode = mode
	a.mu.Unlock()
	switch {
	case mode == "down" && old != "down":
		_ = a.srv.Close()
	case mode != "down" && old == "down":
		for range 50 {
			if l, err := net.Listen("tcp", a.addr); err == nil {
				a.serve(l)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		panic("cannot listen again on " + a.addr)
	}
}

func (a *flakyApp) requests() []secReq {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]secReq(nil), a.got...)
}

// deliveryEnv is Caddy with oss_upload in front of a flakyApp, and ossemu.
type deliveryEnv struct {
	emu    *ossemu.Emulator
	app    *flakyApp
	tester *caddytest.Tester
	toOSS  *http.Client
	config string
}

func newDeliveryEnv(t *testing.T, callbackExtra string) *deliveryEnv {
	return newDeliveryEnvWith(t, "", callbackExtra)
}

// newDeliveryEnvWith is newDeliveryEnv with globalExtra in the global
// options.
func newDeliveryEnvWith(t *testing.T, globalExtra, callbackExtra string) *deliveryEnv {
	emu, keyFile := startEmu(t, ossemu.Options{Buckets: []string{"dl-bucket"}, AccessKeys: map[string]string{"dl-ak": "dl-secret"}})
	e := &deliveryEnv{emu: emu, app: newFlakyApp(t), tester: newTester(t), toOSS: loopbackClient(emu.Addr())}
	e.config = strings.Replace(testGlobal(t), "persist_config off\n", "persist_config off\n"+globalExtra, 1) + `
http://localhost:9080 {
	oss_upload {
		bucket dl-bucket
		region cn-hangzhou
		endpoint ` + emu.Endpoint() + `
		upload_url ` + emu.BucketURL("dl-bucket") + `
		access_key_id dl-ak
		access_key_secret dl-secret
		callback {
			url http://localhost:9080/oss/callback
			trusted_key ` + keyFile + `
			answer_within 1s
			` + callbackExtra + `
		}
	}
	reverse_proxy ` + e.app.addr + `
}`
	e.tester.InitServer(e.config, "caddyfile")
	return e
}

// upload sends one PostObject upload and returns the uploader's answer.
func (e *deliveryEnv) upload(t *testing.T, content string) (int, string) {
	t.Helper()
	status, body, err := e.tryUpload(content)
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// tryUpload is upload for any goroutine: errors are returned.
func (e *deliveryEnv) tryUpload(content string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://localhost:9080/oss/post-policy?filename=f.txt&type=text/plain", nil)
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	var p struct {
		URL    string            `json:"url"`
		Fields map[string]string `json:"fields"`
	}
	err = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if err != nil {
		return 0, "", fmt.Errorf("post-policy answer: %w", err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range p.Fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "f.txt")
	_, _ = io.WriteString(fw, content)
	_ = mw.Close()
	resp, err = e.toOSS.Post(p.URL, mw.FormDataContentType(), &buf)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// waitDelivered waits (bounded) until the app has answered at least n
// distinct callbacks, counted by Idempotency-Key, and returns how many
// requests each key got.
func (e *deliveryEnv) waitDelivered(t *testing.T, n int, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		keys := map[string]int{}
		for _, r := range e.app.requests() {
			if r.header.Get(verifiedHeader) != "true" {
				t.Fatalf("the app received an unverified request: %v", r.header)
			}
			keys[r.header.Get("Idempotency-Key")]++
		}
		if len(keys) >= n || time.Now().After(deadline) {
			return keys
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDeliveryAnswers(t *testing.T) {
	e := newDeliveryEnv(t, "")
	for _, tc := range []struct {
		mode       string
		wantStatus int
		wantBody   string
	}{
		{"up", 200, `{"saved":true}`},
		{"chunked", 200, `{"saved":true}`}, // re-sent with a Content-Length, which OSS requires
		{"4xx", 203, "CallbackFailed"},     // the app's decision: not retried
		{"slow", 200, `"status":"queued"`},
		{"5xx", 200, `"status":"queued"`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e.app.setMode(tc.mode)
			before := len(e.app.requests())
			status, body := e.upload(t, "content for "+tc.mode)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Fatalf("uploader got %d %s", status, body)
			}
			e.app.setMode("up")
			got := e.app.requests()[before:]
			if len(got) == 0 || got[0].header.Get("Idempotency-Key") == "" {
				t.Fatalf("the app received %d requests", len(got))
			}
			key := got[0].header.Get("Idempotency-Key")
			if tc.wantBody == `"status":"queued"` {
				if !strings.Contains(body, key) {
					t.Errorf("the queued answer %s does not name %s", body, key)
				}
				// Delivered later, with the same key.
				deadline := time.Now().Add(15 * time.Second)
				for {
					all := e.app.requests()[before:]
					last := all[len(all)-1]
					if len(all) >= 2 && last.header.Get("Idempotency-Key") == key {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("not delivered again: %d requests", len(all))
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			if tc.mode == "4xx" {
				time.Sleep(3 * time.Second) // longer than the first retry would wait
				if n := len(e.app.requests()) - before; n != 1 {
					t.Errorf("a 4xx answer was retried: %d requests", n)
				}
			}
		})
	}
}

// The upstream is down while 20 uploads complete: every uploader gets 200,
// and when it comes back it receives each upload exactly once.
func TestDeliveryOutage(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	for i := range 20 {
		status, body := e.upload(t, fmt.Sprintf("upload %d", i))
		if status != 200 || !strings.Contains(body, `"status":"queued"`) {
			t.Fatalf("upload %d: %d %s", i, status, body)
		}
	}
	if len(e.app.requests()) != 0 {
		t.Fatal("a down app received requests")
	}
	e.app.setMode("up")
	keys := e.waitDelivered(t, 20, 30*time.Second)
	if len(keys) != 20 {
		t.Fatalf("%d of 20 uploads delivered", len(keys))
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	for k, n := range e.waitDelivered(t, 20, 0) {
		if n != 1 {
			t.Errorf("upload %s delivered %d times", k, n)
		}
	}
}

// A reload while callbacks are queued neither loses nor duplicates them.
func TestDeliveryAcrossReload(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	for i := range 5 {
		if status, body := e.upload(t, fmt.Sprintf("before reload %d", i)); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
	e.tester.InitServer(strings.Replace(e.config, "answer_within 1s", "answer_within 2s", 1), "caddyfile")
	e.app.setMode("up")
	e.waitDelivered(t, 5, 30*time.Second)
	time.Sleep(2 * time.Second) // nothing more arrives
	keys := e.waitDelivered(t, 5, 0)
	if len(keys) != 5 {
		t.Fatalf("%d of 5 delivered", len(keys))
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}

// Reloads in the middle of a burst of uploads, with the app down: every
// callback the uploaders were told is queued reaches the app once when it
// comes back, promptly (the new configuration's queue takes over what the
// old one recorded, including during the handover), and no upload reaches
// it twice.
func TestDeliveryReloadDuringBurst(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	var mu sync.Mutex
	queued := map[string]bool{} // Idempotency-Keys of the uploads told "queued"
	uploads := 0
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				content := fmt.Sprintf("burst %d-%d", w, i)
				status, body, err := e.tryUpload(content)
				if err != nil {
					t.Errorf("%s: %v", content, err)
					return
				}
				var answer struct {
					Status string `json:"status"`
					Key    string `json:"idempotency_key"`
				}
				_ = json.Unmarshal([]byte(body), &answer)
				if status == 200 && (answer.Status != "queued" || answer.Key == "") {
					t.Errorf("%s: told %d %s by a down app", content, status, body)
				}
				mu.Lock()
				uploads++
				if status == 200 {
					queued[answer.Key] = true
				}
				mu.Unlock()
			}
		}()
	}
	for _, within := range []string{"answer_within 2s", "answer_within 1500ms"} {
		time.Sleep(300 * time.Millisecond)
		e.tester.InitServer(strings.Replace(e.config, "answer_within 1s", within, 1), "caddyfile")
	}
	wg.Wait()
	e.app.setMode("up")
	// The queue rescans every 10 s: each callback arrives well within 30 s,
	// not at the next reload.
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys := e.waitDelivered(t, 0, 0)
		missing := 0
		for k := range queued {
			if keys[k] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d queued callbacks not delivered within 30 s", missing, len(queued))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	for k, n := range e.waitDelivered(t, 0, 0) {
		if n != 1 {
			t.Errorf("%s delivered %d times (told queued: %v)", k, n, queued[k])
		}
	}
	if len(queued) < uploads*2/3 {
		t.Errorf("only %d of %d uploads told 200 across the reloads", len(queued), uploads)
	}
}

// After a reload that puts another route in front of the callback path, a
// queued callback's retries reach the app through that route unmarked:
// only the handler that queued an event says it is verified. The event
// stays owed, and is delivered, verified and once, when the handler is in
// the way again.
func TestDeliveryRetryThroughAnotherRoute(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	if status, body := e.upload(t, "queued, then intercepted"); status != 200 || !strings.Contains(body, `"queued"`) {
		t.Fatalf("%d %s", status, body)
	}
	site := e.config[strings.Index(e.config, "http://localhost:9080 {"):]
	body := strings.TrimSuffix(strings.TrimPrefix(site, "http://localhost:9080 {"), "}")
	intercepted := strings.Replace(e.config, site, "http://localhost:9080 {\n\thandle /oss/callback {\n\t\treverse_proxy "+
		e.app.addr+"\n\t}\n\thandle {"+body+"}\n}", 1)
	e.tester.InitServer(intercepted, "caddyfile")
	e.app.setMode("up")
	deadline := time.Now().Add(15 * time.Second)
	for len(e.app.requests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	got := e.app.requests()
	if len(got) < 2 {
		t.Fatalf("the retries did not come through the other route: %d requests", len(got))
	}
	for _, r := range got {
		if v := r.header.Get(verifiedHeader); v != "" {
			t.Fatalf("a retry through another route reached the app with %s: %q", verifiedHeader, v)
		}
	}
	before := len(got)
	e.tester.InitServer(e.config, "caddyfile")
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		verified := 0
		for _, r := range e.app.requests()[before:] {
			if r.header.Get(verifiedHeader) == "true" {
				verified++
			}
		}
		if verified > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	verified := 0
	for _, r := range e.app.requests()[before:] {
		if r.header.Get(verifiedHeader) == "true" {
			verified++
		}
	}
	if verified != 1 {
		t.Fatalf("after the handler is back, %d verified deliveries, want 1", verified)
	}
}

// delivery direct relays the upstream's answer, normalized, and keeps
// nothing: a slow app makes OSS report CallbackFailed.
func TestDeliveryDirect(t *testing.T) {
	e := newDeliveryEnv(t, "delivery direct")
	if status, body := e.upload(t, "direct"); status != 200 || body != `{"saved":true}` {
		t.Fatalf("%d %s", status, body)
	}
	e.app.setMode("down")
	status, body := e.upload(t, "direct, app down")
	if status != 203 {
		t.Fatalf("%d %s", status, body)
	}
	e.app.setMode("up")
	time.Sleep(3 * time.Second)
	if n := len(e.app.requests()); n != 1 {
		t.Errorf("direct delivery retried: %d requests", n)
	}
}

// A callback the upstream never takes within retry_for is kept as dead:
// out of the queue, in storage for inspection, counted as failed.
func TestDeliveryGivesUp(t *testing.T) {
	e := newDeliveryEnv(t, "retry_for 2s")
	dir := e.config[strings.Index(e.config, "storage file_system ")+len("storage file_system "):]
	dir = dir[:strings.IndexByte(dir, '\n')]
	before := counterValue(t, "caddy_oss_callback_deliveries_total", deliveryDead)
	e.app.setMode("5xx")
	status, body := e.upload(t, "never taken")
	if status != 200 || !strings.Contains(body, `"status":"queued"`) {
		t.Fatalf("%d %s", status, body)
	}
	var answer struct {
		Key string `json:"idempotency_key"`
	}
	_ = json.Unmarshal([]byte(body), &answer)
	dead := filepath.Join(dir, "oss_upload", "events", "*", "dead", "*", answer.Key)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m, _ := filepath.Glob(dead); len(m) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not kept", dead)
		}
		time.Sleep(200 * time.Millisecond)
	}
	queued, _ := filepath.Glob(filepath.Join(dir, "oss_upload", "events", "*", "pending", answer.Key))
	if len(queued) != 0 {
		t.Errorf("still queued: %v", queued)
	}
	if n := len(e.app.requests()); n < 2 {
		t.Errorf("only %d attempts before giving up", n)
	}
	if after := counterValue(t, "caddy_oss_callback_deliveries_total", deliveryDead); after != before+1 {
		t.Errorf("dead deliveries %v → %v", before, after)
	}
}

// counterValue reads one outcome of a counter family from the collectors.
func counterValue(t *testing.T, family, outcome string) float64 {
	t.Helper()
	if family != "caddy_oss_callback_deliveries_total" {
		t.Fatalf("unknown family %s", family)
	}
	return testutil.ToFloat64(ossMetrics.deliveries.WithLabelValues(outcome))
}
