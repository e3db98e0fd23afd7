package caddyoss

import (
	"crypto/md5"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
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
