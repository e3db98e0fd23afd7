package caddyoss

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// keyServer stands in for gosspublic.alicdn.com on loopback; calls counts
// the key fetches made to it (see useKeyServer).
type keyServer struct {
	srv   *httptest.Server
	calls atomic.Int64
}

func newKeyServer(t testing.TB, answer http.HandlerFunc) *keyServer {
	ks := &keyServer{}
	ks.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != alibabaKeyHost {
			t.Errorf("key fetch for host %q", r.Host)
		}
		answer(w, r)
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

// useKeyServer points v's HTTP client at ks: every connection goes to the
// loopback server whatever host the URL names, so no test reaches
// gosspublic.alicdn.com. timeout replaces the client's.
func useKeyServer(t testing.TB, v *callbackVerifier, ks *keyServer, timeout time.Duration) {
	tr := ks.srv.Client().Transport.(*http.Transport).Clone()
	addr := ks.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	// The httptest certificate is for example.com.
	tr.TLSClientConfig.ServerName = "example.com"
	t.Cleanup(tr.CloseIdleConnections)
	// The transport asks Proxy once per request it sends: the fetches are
	// counted when the verifier makes them, even when a loaded machine
	// lets a fetch's timeout pass before the server sees it. (A wrapping
	// RoundTripper would change how the client's timeout ends a request,
	// and so the error the log shows.)
	tr.Proxy = func(*http.Request) (*url.URL, error) {
		ks.calls.Add(1)
		return nil, nil
	}
	v.client = &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: v.client.CheckRedirect}
}

// keyFetchHandler is a callback handler whose key fetches go to a loopback
// server answering with answer, with a quiet log and a test clock.
func keyFetchHandler(t *testing.T, answer http.HandlerFunc, timeout time.Duration) (*Handler, *keyServer, *testClock) {
	t.Helper()
	ks := newKeyServer(t, answer)
	h := callbackHandler(t)
	useKeyServer(t, h.callback.verifier, ks, timeout)
	h.callback.verifier.logger = zap.NewNop()
	clock := &testClock{t: time.Now()}
	h.callback.verifier.now = clock.now
	return h, ks, clock
}

// keyURLHeader is the x-oss-pub-key-url of a callback naming rawURL.
func keyURLHeader(rawURL string) string {
	return base64.StdEncoding.EncodeToString([]byte(rawURL))
}

// sendCallbacks sends n E1 callbacks naming the key URLs keyURL(i), one
// after another or all at once, and returns their statuses.
func sendCallbacks(t *testing.T, h *Handler, n int, concurrent bool, keyURL func(i int) string) []int {
	t.Helper()
	statuses := make([]int, n)
	send := func(i int) {
		r := e1Request(func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", keyURLHeader(keyURL(i))) })
		rec := httptest.NewRecorder()
		next := handlerFunc(func(http.ResponseWriter, *http.Request) error { return fmt.Errorf("upstream reached") })
		if err := h.ServeHTTP(rec, r, next); err != nil {
			statuses[i] = -1
			return
		}
		statuses[i] = rec.Code
	}
	if !concurrent {
		for i := range n {
			send(i)
		}
		return statuses
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { send(i) })
	}
	wg.Wait()
	return statuses
}

func wantStatuses(t *testing.T, statuses []int, want int) {
	t.Helper()
	for i, s := range statuses {
		if s != want {
			t.Fatalf("callback %d: status %d, want %d", i, s, want)
		}
	}
}

// A key URL whose fetch failed is not fetched again for keyFetchRetryAfter,
// however many callbacks name it, in sequence or at once; then it is
// fetched once more.
func TestCallbackKeyFetchFailureIsRemembered(t *testing.T) {
	answers := map[string]http.HandlerFunc{
		"status 500": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) },
		"not a key":  func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "garbage") },
	}
	for name, answer := range answers {
		for _, concurrent := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/concurrent=%v", name, concurrent), func(t *testing.T) {
				const n = 40
				h, ks, clock := keyFetchHandler(t, answer, time.Second)
				// The query differs per callback; it is not part of the
				// key's identity and does not defeat the cache.
				keyURL := func(i int) string {
					return fmt.Sprintf("http://gosspublic.alicdn.com/callback_pub_key_v2.pem?n=%d", i)
				}
				round := func(wantCalls int64) {
					t.Helper()
					wantStatuses(t, sendCallbacks(t, h, n, concurrent, keyURL), http.StatusForbidden)
					if got := ks.calls.Load(); got != wantCalls {
						t.Fatalf("key fetches = %d, want %d", got, wantCalls)
					}
				}
				round(1)
				clock.add(keyFetchRetryAfter - time.Second)
				round(1)
				clock.add(time.Second)
				round(2)
				round(2)
			})
		}
	}
}

// Callbacks naming ever new failing key URLs are each fetched once per
// keyFetchRetryAfter, never block a working key URL of Alibaba's, and
// other files on the host are not fetched at all.
func TestCallbackKeyFetchFailuresDoNotBlock(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			h, ks, clock := keyFetchHandler(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/callback_pub_key_v2.pem" {
					fmt.Fprint(w, alibabaCallbackKeyPEM)
					return
				}
				w.WriteHeader(404)
			}, time.Second)
			const failing = 200
			failingURL := func(i int) string { return fmt.Sprintf("https://gosspublic.alicdn.com/callback_pub_key_v%d.pem", 10+i) }
			good := func() int {
				r := e1Request(func(r *http.Request, _ *string) {
					r.Header.Set("X-Oss-Pub-Key-Url", keyURLHeader("https://gosspublic.alicdn.com/callback_pub_key_v2.pem"))
				})
				rec := httptest.NewRecorder()
				next := handlerFunc(func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(200); return nil })
				if err := h.ServeHTTP(rec, r, next); err != nil {
					return -1
				}
				return rec.Code
			}
			for round := range 2 {
				wantStatuses(t, sendCallbacks(t, h, failing, concurrent, failingURL), http.StatusForbidden)
				// The failures are remembered, and another key still works
				// (fetched once, then cached).
				if s := good(); s != http.StatusOK {
					t.Fatalf("round %d: a working key URL got %d", round, s)
				}
				if got, want := ks.calls.Load(), int64((round+1)*failing+1); got != want {
					t.Fatalf("round %d: key fetches = %d, want %d", round, got, want)
				}
				clock.add(keyFetchRetryAfter)
			}
			before := ks.calls.Load()
			other := func(i int) string { return fmt.Sprintf("https://gosspublic.alicdn.com/key_%d.pem", i) }
			wantStatuses(t, sendCallbacks(t, h, 50, concurrent, other), http.StatusForbidden)
			if ks.calls.Load() != before {
				t.Errorf("files that are not callback keys were fetched")
			}
		})
	}
}

// A key fetched over the loopback server verifies callbacks and is fetched
// once.
func TestCallbackKeyFetchOverLoopback(t *testing.T) {
	h, ks, _ := keyFetchHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback_pub_key_v2.pem" || r.URL.RawQuery != "" {
			t.Errorf("fetched %s", r.URL)
		}
		fmt.Fprint(w, alibabaCallbackKeyPEM)
	}, time.Second)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := e1Request(func(r *http.Request, _ *string) {
				r.Header.Set("X-Oss-Pub-Key-Url", keyURLHeader("https://gosspublic.alicdn.com/callback_pub_key_v2.pem?x=1"))
			})
			rec := httptest.NewRecorder()
			next := handlerFunc(func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(200); return nil })
			if err := h.ServeHTTP(rec, r, next); err == nil {
				statuses[i] = rec.Code
			}
		})
	}
	wg.Wait()
	wantStatuses(t, statuses, http.StatusOK)
	if got := ks.calls.Load(); got != 1 {
		t.Errorf("key fetches = %d, want 1", got)
	}
}
