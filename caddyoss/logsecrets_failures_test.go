package caddyoss

// Failures that log: an STS that is down, slow or answers badly, and
// callback key fetches that fail, each with the secrets its requests
// carried.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/sts"
)

// leakySTS answers AssumeRole with answer and keeps every query it gets.
type leakySTS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	queries []string
}

func newLeakySTS(t testing.TB, answer func(w http.ResponseWriter, q url.Values)) *leakySTS {
	f := &leakySTS{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		f.mu.Unlock()
		answer(w, r.URL.Query())
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// secrets are what the requests the fake got carried: each raw query and
// its signature and nonce.
func (f *leakySTS) secrets(t *testing.T) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		t.Fatal("STS got no request")
	}
	var out []string
	for _, raw := range f.queries {
		out = append(out, querySecrets(t, raw)...)
	}
	return out
}

// querySecrets are the secrets of one signed AssumeRole query.
func querySecrets(t *testing.T, rawQuery string) []string {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("Signature") == "" || q.Get("SignatureNonce") == "" {
		t.Fatalf("unsigned query %s", rawQuery)
	}
	return []string{rawQuery, q.Get("Signature"), q.Get("SignatureNonce"), "AccessKeyId=" + q.Get("AccessKeyId")}
}

// stsJSON answers as STS does, with a JSON body.
func stsJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func stsRaw(status int, body string) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// Credentials a bad answer issues; none may reach the log.
const (
	issuedSecret = "stsIssuedSecret7Qx9"
	issuedToken  = "CAISissuedToken4Kp2Zr"
)

// stsFailure gets credentials from an STS route whose AssumeRole goes to
// endpoint and fails, and returns the raw errors of the SDK.
func stsFailure(t *testing.T, logger *zap.Logger, endpoint string, readTimeout time.Duration) []error {
	t.Helper()
	h := testHandler(t, func(h *Handler) {
		h.STS = &STSConfig{RoleARN: "acs:ram::123:role/up", Endpoint: endpoint}
	})
	// The handler and a broker built as Provision builds it log to logger.
	h.logger = logger
	cred, err := h.creds.credential()
	if err != nil {
		t.Fatal(err)
	}
	if h.sts, err = newSTSBroker(*h.STS, h.Region, cred, logger); err != nil {
		t.Fatal(err)
	}
	if readTimeout > 0 {
		h.sts.ReadTimeout = readTimeout
	}
	var mu sync.Mutex
	var raw []error
	assumeRole := h.sts.Call
	h.sts.Call = func(ctx context.Context, session, policy string) (osssign.Credentials, error) {
		c, err := assumeRole(ctx, session, policy)
		mu.Lock()
		raw = append(raw, err)
		mu.Unlock()
		return c, err
	}
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, withReplacer(httptest.NewRequest("GET", "/oss/sts", nil)), nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("STS route answered %d: %s", rec.Code, rec.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range raw {
		if err == nil {
			t.Fatal("AssumeRole succeeded")
		}
		t.Logf("SDK error %T, logged as %q", err, sts.ErrorSummary(err))
	}
	return raw
}

// networkSecrets are the secrets in the signed URL a network error quotes;
// that the SDK quotes it is what makes the summary necessary.
func networkSecrets(t *testing.T, errs []error) []string {
	var out []string
	for _, err := range errs {
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Fatalf("error %T is not a *url.Error", err)
		}
		u, perr := url.Parse(ue.URL)
		if perr != nil {
			t.Fatal(perr)
		}
		if !strings.Contains(err.Error(), u.RawQuery) {
			t.Fatalf("the SDK's error no longer quotes the signed URL")
		}
		out = append(out, querySecrets(t, u.RawQuery)...)
	}
	return out
}

// quotesAnswer fails unless every error quotes secret from the answer: the
// case would not test the summary otherwise.
func quotesAnswer(t *testing.T, errs []error, secret string) {
	t.Helper()
	for _, err := range errs {
		if !strings.Contains(err.Error(), secret) {
			t.Fatalf("the SDK's error no longer quotes the answer: %v", err)
		}
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// failingCallback sends one callback naming keyURL to a handler whose key
// fetches go to a loopback server answering with answer.
func failingCallback(t *testing.T, logger *zap.Logger, answer http.HandlerFunc, timeout time.Duration, keyURL string) []string {
	t.Helper()
	h, ks, _ := keyFetchHandler(t, answer, timeout)
	h.logger, h.callback.verifier.logger = logger, logger
	sig := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 64))
	r := e1Request(func(r *http.Request, _ *string) {
		r.Header.Set("Authorization", sig)
		r.Header.Set("X-Oss-Pub-Key-Url", keyURLHeader(keyURL))
	})
	if rec, rc := runCallback(t, h, r); rec.Code != http.StatusForbidden || rc.called {
		t.Fatalf("callback answered %d", rec.Code)
	}
	if ks.calls.Load() != 1 {
		t.Fatalf("key fetches = %d", ks.calls.Load())
	}
	u, _ := url.Parse(keyURL)
	secrets := []string{sig, u.RawQuery}
	for _, vs := range u.Query() {
		secrets = append(secrets, vs...)
	}
	return secrets
}
