package caddyoss

// The environment of the delivery tests: Caddy with oss_upload in front of
// an app whose behaviour a test switches, and ossemu.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

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
	e.config = appSite(t, emu, "dl-bucket", "dl-ak", "dl-secret", `
		callback {
			url http://localhost:9080/oss/callback
			trusted_key `+keyFile+`
			answer_within 1s
			`+callbackExtra+`
		}`, e.app.addr)
	e.config = strings.Replace(e.config, "persist_config off\n", "persist_config off\n"+globalExtra, 1)
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

// counterValue reads one outcome of a counter family from the collectors.
func counterValue(t *testing.T, family, outcome string) float64 {
	t.Helper()
	if family != "caddy_oss_callback_deliveries_total" {
		t.Fatalf("unknown family %s", family)
	}
	return testutil.ToFloat64(ossMetrics.deliveries.WithLabelValues(outcome))
}
