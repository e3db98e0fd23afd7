package caddyoss

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// E1: a genuine OSS callback (vectors.md §E1), signed with Alibaba's key.
const (
	e1Path    = "/index.php?id=1&index=2"
	e1Body    = "bucket=yonghu-test"
	e1Sig     = "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA=="
	e1Key     = "aHR0cHM6Ly9nb3NzcHVibGljLmFsaWNkbi5jb20vY2FsbGJhY2tfcHViX2tleV92MS5wZW0=" // https://gosspublic.alicdn.com/callback_pub_key_v1.pem
	e1KeyHTTP = "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=="
)

type recordedCall struct {
	called bool
	method string
	uri    string
	header http.Header
	body   []byte
}

func callbackHandler(t *testing.T, trusted ...string) *Handler {
	h := testHandler(t, func(h *Handler) {
		h.Bucket = "yonghu-test"
		h.CallbackPath = "/index.php"
		h.Callback = &CallbackConfig{TrustedKeys: trusted, MaxBody: 1024, VerifyOnly: true}
	})
	h.logger = zap.NewNop()
	return h
}

func e1Request(mutate func(r *http.Request, body *string)) *http.Request {
	body := e1Body
	r := httptest.NewRequest("POST", e1Path, nil)
	r.Header.Set("Authorization", e1Sig)
	r.Header.Set("X-Oss-Pub-Key-Url", e1Key)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if mutate != nil {
		mutate(r, &body)
	}
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	return withReplacer(r)
}

func runCallback(t *testing.T, h *Handler, r *http.Request) (*httptest.ResponseRecorder, *recordedCall) {
	t.Helper()
	rc := &recordedCall{}
	next := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		rc.called = true
		rc.method, rc.uri, rc.header = r.Method, r.RequestURI, r.Header.Clone()
		rc.body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
		return nil
	})
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, r, next); err != nil {
		t.Fatal(err)
	}
	return rec, rc
}

func TestCallbackGenuineE1(t *testing.T) {
	for _, keyURL := range []string{e1Key, e1KeyHTTP} {
		h := callbackHandler(t)
		r := e1Request(func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", keyURL)
			r.Header.Set(verifiedHeader, "forged")
		})
		rec, rc := runCallback(t, h, r)
		if rec.Code != 200 || rec.Body.String() != `{"ok":true}` || !rc.called {
			t.Fatalf("status %d body %s called %v", rec.Code, rec.Body, rc.called)
		}
		// Rebuilt, not relayed: the callback path without the query OSS
		// was given, the signed body, and only the documented headers.
		if rc.method != "POST" || rc.uri != "/index.php" || string(rc.body) != e1Body ||
			rc.header.Get(verifiedHeader) != "true" || len(rc.header.Get("Idempotency-Key")) != 64 {
			t.Errorf("upstream saw %+v", rc)
		}
		for name := range rc.header {
			switch name {
			case "Content-Type", "Content-Length", "Idempotency-Key", verifiedHeader, "X-Oss-Bucket":
			default:
				t.Errorf("the upstream got the header %s", name)
			}
		}
		repl := replacer(r)
		if v, _ := repl.GetString("http.oss_upload.callback.bucket"); v != "yonghu-test" {
			t.Errorf("bucket placeholder %q", v)
		}
	}
}

func TestCallbackRejections(t *testing.T) {
	h := callbackHandler(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		mutate func(r *http.Request, body *string)
		status int
	}{
		{"path byte", func(r *http.Request, _ *string) {
			r.RequestURI = "/index.php?id=1&index=3"
			r.URL.RawQuery = "id=1&index=3"
		}, 403},
		{"query byte", func(r *http.Request, _ *string) { r.RequestURI = "/index.php?id=2&index=2" }, 403},
		{"body byte", func(_ *http.Request, b *string) { *b = "bucket=yonghu-tesT" }, 403},
		{"signature byte", func(r *http.Request, _ *string) {
			sig, _ := base64.StdEncoding.DecodeString(e1Sig)
			sig[10] ^= 1
			r.Header.Set("Authorization", base64.StdEncoding.EncodeToString(sig))
		}, 403},
		{"attacker key URL", func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", b64("https://evil.example/key.pem"))
		}, 403},
		{"lookalike suffix", func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", b64("https://gosspublic.alicdn.com.evil.example/callback_pub_key_v1.pem"))
		}, 403},
		{"lookalike path", func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", b64("https://evil.example/gosspublic.alicdn.com/callback_pub_key_v1.pem"))
		}, 403},
		{"user info", func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", b64("https://gosspublic.alicdn.com@evil.example/callback_pub_key_v1.pem"))
		}, 403},
		{"port", func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", b64("https://gosspublic.alicdn.com:8443/callback_pub_key_v1.pem"))
		}, 403},
		{"backslash", func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", b64(`https://evil.example\@gosspublic.alicdn.com/callback_pub_key_v1.pem`))
		}, 403},
		{"ftp scheme", func(r *http.Request, _ *string) {
			r.Header.Set("X-Oss-Pub-Key-Url", b64("ftp://gosspublic.alicdn.com/callback_pub_key_v1.pem"))
		}, 403},
		{"missing Authorization", func(r *http.Request, _ *string) { r.Header.Del("Authorization") }, 400},
		{"missing key URL", func(r *http.Request, _ *string) { r.Header.Del("X-Oss-Pub-Key-Url") }, 400},
		{"bad signature base64", func(r *http.Request, _ *string) { r.Header.Set("Authorization", "***") }, 400},
		{"bad key URL base64", func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", "***") }, 400},
		{"short signature", func(r *http.Request, _ *string) { r.Header.Set("Authorization", b64("short")) }, 403},
		{"oversized body", func(_ *http.Request, b *string) { *b = strings.Repeat("a", 1025) }, 400},
		{"bad Content-MD5", func(r *http.Request, _ *string) { r.Header.Set("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==") }, 400},
		{"wrong method", func(r *http.Request, _ *string) { r.Method = "GET" }, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, rc := runCallback(t, h, e1Request(tc.mutate))
			if rec.Code != tc.status || rc.called {
				t.Errorf("status %d (want %d), upstream called %v: %s", rec.Code, tc.status, rc.called, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), `"error":`) {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
	// A matching Content-MD5 is accepted.
	sum := md5.Sum([]byte(e1Body))
	rec, rc := runCallback(t, h, e1Request(func(r *http.Request, _ *string) {
		r.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	}))
	if rec.Code != 200 || !rc.called {
		t.Errorf("Content-MD5: %d", rec.Code)
	}
}

// signCallback signs a callback as OSS does, with crypto/rsa.
func signCallback(t testing.TB, key *rsa.PrivateKey, uri, body string) string {
	msg, err := callback.StringToSign(uri, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.MD5, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func writeKeyPEM(t testing.TB, key *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCallbackTrustedKey(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	h := callbackHandler(t, writeKeyPEM(t, key))
	emuURL := base64.StdEncoding.EncodeToString([]byte("http://127.0.0.1:9/ossemu/callback_pub_key.pem"))
	for _, tc := range []struct {
		name   string
		signer *rsa.PrivateKey
		uri    string
		status int
	}{
		{"trusted key", key, "/index.php?a=%2F&b=c+d", 200},
		{"encoded path", key, "/index%2Ephp", 200},
		{"untrusted key", other, "/index.php", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"bucket":"yonghu-test","object":"a/` + tc.name + `.png","size":1234567,"etag":"E"}`
			r := httptest.NewRequest("POST", tc.uri, strings.NewReader(body))
			r.Header.Set("Authorization", signCallback(t, tc.signer, tc.uri, body))
			r.Header.Set("X-Oss-Pub-Key-Url", emuURL)
			r.Header.Set("Content-Type", "application/json")
			r = withReplacer(r)
			h.CallbackPath = r.URL.Path
			rec, rc := runCallback(t, h, r)
			if rec.Code != tc.status || rc.called != (tc.status == 200) {
				t.Fatalf("status %d called %v: %s", rec.Code, rc.called, rec.Body)
			}
			if tc.status == 200 {
				if v, _ := replacer(r).GetString("http.oss_upload.callback.size"); v != "1234567" {
					t.Errorf("size placeholder %q", v)
				}
			}
		})
	}
	// Without trusted keys, a non-Alibaba key URL is refused outright.
	h2 := callbackHandler(t)
	r := e1Request(func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", emuURL) })
	if rec, rc := runCallback(t, h2, r); rec.Code != 403 || rc.called {
		t.Errorf("untrusted URL: %d", rec.Code)
	}
}

func TestVerifyPKCS1v15MD5Sizes(t *testing.T) {
	// 512 bits: the genuine E1 signature with Alibaba's key.
	msg, _ := callback.StringToSign(e1Path, []byte(e1Body))
	sig, _ := base64.StdEncoding.DecodeString(e1Sig)
	if err := callback.VerifyMD5(pinnedAlibabaKey, msg, sig); err != nil {
		t.Errorf("E1: %v", err)
	}
	if pinnedAlibabaKey.N.BitLen() != 512 {
		t.Errorf("pinned key has %d bits", pinnedAlibabaKey.N.BitLen())
	}
	// 2048 bits, signed by crypto/rsa.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	sum := md5.Sum([]byte("hello"))
	s, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.MD5, sum[:])
	if err := callback.VerifyMD5(&key.PublicKey, []byte("hello"), s); err != nil {
		t.Errorf("2048: %v", err)
	}
	if err := callback.VerifyMD5(&key.PublicKey, []byte("hellO"), s); err == nil {
		t.Error("2048: wrong message accepted")
	}
	// s >= n is refused.
	big := key.PublicKey.N.FillBytes(make([]byte, 256))
	if err := callback.VerifyMD5(&key.PublicKey, []byte("hello"), big); err == nil {
		t.Error("s = n accepted")
	}
}

// Keys at other gosspublic paths are fetched once and cached.
func TestCallbackKeyFetch(t *testing.T) {
	var fetches atomic.Int64
	body := alibabaCallbackKeyPEM
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fetches.Add(1)
		if r.URL.Host != alibabaKeyHost || r.URL.Scheme != "https" {
			t.Errorf("fetched %s", r.URL)
		}
		b := body
		if r.URL.Path == "/callback_pub_key_v4.pem" {
			b = strings.Repeat("x", maxPubKeyBytes+1)
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(b)), Header: http.Header{}}, nil
	})
	h := callbackHandler(t)
	h.verifier.client.Transport = rt
	otherPath := base64.StdEncoding.EncodeToString([]byte("http://gosspublic.alicdn.com/callback_pub_key_v3.pem"))
	for i := 0; i < 3; i++ {
		// The same genuine callback: the first is forwarded, the copies are
		// answered without reaching the app.
		rec, rc := runCallback(t, h, e1Request(func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", otherPath) }))
		if rec.Code != 200 || rc.called != (i == 0) {
			t.Fatalf("copy %d: status %d called %v", i, rec.Code, rc.called)
		}
	}
	if fetches.Load() != 1 {
		t.Errorf("fetched %d times", fetches.Load())
	}
	bigPath := base64.StdEncoding.EncodeToString([]byte("https://gosspublic.alicdn.com/callback_pub_key_v4.pem"))
	if rec, rc := runCallback(t, h, e1Request(func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", bigPath) })); rec.Code != 403 || rc.called {
		t.Errorf("oversized key: %d", rec.Code)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func FuzzCallbackVerify(f *testing.F) {
	f.Add(e1Path, e1Body, e1Sig, e1Key, "")
	f.Add("/index.php?id=1&index=2", "bucket=yonghu-test", e1Sig, e1KeyHTTP, "")
	f.Add("/%zz", "", "", "", "x")
	h := testHandler(f, func(h *Handler) {
		h.CallbackPath = "/index.php"
		h.Callback = &CallbackConfig{MaxBody: 4096, VerifyOnly: true}
	})
	h.logger = zap.NewNop()
	v, err := newCallbackVerifier(nil, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	v.client.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 404, Body: http.NoBody, Header: http.Header{}}, nil
	})
	h.verifier = v
	f.Fuzz(func(t *testing.T, uri, body, sig, keyURL, md5h string) {
		if !strings.HasPrefix(uri, "/") {
			uri = "/" + uri
		}
		r, err := http.NewRequest("POST", "http://x"+uri, bytes.NewReader([]byte(body)))
		if err != nil {
			return
		}
		r.RequestURI = uri
		r.Header.Set("Authorization", sig)
		r.Header.Set("X-Oss-Pub-Key-Url", keyURL)
		if md5h != "" {
			r.Header.Set("Content-MD5", md5h)
		}
		called := false
		next := handlerFunc(func(http.ResponseWriter, *http.Request) error { called = true; return nil })
		_ = h.serveCallback(httptest.NewRecorder(), withReplacer(r), next)
		genuine := uri == e1Path && body == e1Body && sig == e1Sig
		if called && !genuine {
			t.Fatalf("unverified callback reached the upstream: %q %q %q %q", uri, body, sig, keyURL)
		}
	})
}

// BenchmarkCallbackRoute verifies a new callback each iteration (signed
// outside the timer with a trusted 1024-bit key), records it against
// replays in file system storage and hands it to an upstream that answers
// at once: with delivery direct, with delivery queued (a store and a
// delete more), and the upstream alone for comparison.
func BenchmarkCallbackRoute(b *testing.B) {
	key, _ := rsa.GenerateKey(rand.Reader, 1024)
	keyFile := writeKeyPEM(b, key)
	next := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write([]byte(`{"ok":true}`))
		return err
	})
	for _, mode := range []string{"upstream only", deliveryModeDirect, deliveryModeQueued} {
		b.Run(mode, func(b *testing.B) {
			h := testHandler(b, func(h *Handler) {
				h.Bucket = "yonghu-test"
				h.CallbackPath = "/index.php"
				h.Callback = &CallbackConfig{TrustedKeys: []string{keyFile}, VerifyOnly: true, Delivery: mode}
				if mode == "upstream only" {
					h.Callback.Delivery = deliveryModeDirect
				}
			})
			h.logger = zap.NewNop()
			emuURL := base64.StdEncoding.EncodeToString([]byte("http://127.0.0.1:9/key.pem"))
			b.ReportAllocs()
			n := 0
			upstreamOnly := mode == "upstream only"
			for b.Loop() {
				// Signing is not what is measured; StopTimer itself costs
				// more than the upstream alone, which is timed with the
				// building of its request.
				if !upstreamOnly {
					b.StopTimer()
				}
				n++
				body := fmt.Sprintf("bucket=yonghu-test&object=a%%2F%d.png&size=%d", n, n)
				r := httptest.NewRequest("POST", "/index.php", strings.NewReader(body))
				if !upstreamOnly { // the upstream checks nothing: no signature to make
					r.Header.Set("Authorization", signCallback(b, key, "/index.php", body))
				}
				r.Header.Set("X-Oss-Pub-Key-Url", emuURL)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r = withReplacer(r)
				rec := httptest.NewRecorder()
				if !upstreamOnly {
					b.StartTimer()
				}
				var err error
				if upstreamOnly {
					err = next.ServeHTTP(rec, r)
				} else {
					err = h.ServeHTTP(rec, r, next)
				}
				if err != nil || rec.Code != 200 {
					b.Fatalf("%d %v %s", rec.Code, err, rec.Body)
				}
			}
		})
	}
}
