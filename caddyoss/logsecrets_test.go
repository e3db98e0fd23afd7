package caddyoss

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
	"go.uber.org/zap/zapcore"
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
	h.logger, h.sts.logger = logger, logger
	if readTimeout > 0 {
		h.sts.readTimeout = readTimeout
	}
	var mu sync.Mutex
	var raw []error
	assumeRole := h.sts.assumeRole
	h.sts.assumeRole = func(ctx context.Context, session, policy string) (stsCredentials, error) {
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
		t.Logf("SDK error %T, logged as %q", err, stsErrorSummary(err))
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
	h.logger, h.verifier.logger = logger, logger
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

// logged is one message the failure must leave in the log.
type logged struct {
	level zapcore.Level
	text  string
}

func TestNoSecretsInLogs(t *testing.T) {
	const serverSecret = "testsecret" // testHandler's AccessKeySecret
	// A key URL whose query looks like a signed request's.
	const keyURLWithQuery = "https://gosspublic.alicdn.com/callback_pub_key_v2.pem?Signature=cbSig8Hn2&SecurityToken=cbToken5Rw1&OSSAccessKeyId=cbKeyId3Jd"

	tests := []struct {
		name    string
		provoke func(t *testing.T, logger *zap.Logger) []string
		want    []logged
	}{
		{
			name: "STS down",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				return networkSecrets(t, stsFailure(t, logger, "http://"+closedPort(t), 0))
			},
			want: []logged{{zapcore.WarnLevel, "AssumeRole failed"}, {zapcore.WarnLevel, "connection refused"}},
		},
		{
			name: "STS timeout",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				release := make(chan struct{})
				f := newLeakySTS(t, func(w http.ResponseWriter, _ url.Values) { <-release })
				defer close(release)
				return append(networkSecrets(t, stsFailure(t, logger, f.srv.URL, 200*time.Millisecond)), f.secrets(t)...)
			},
			want: []logged{{zapcore.WarnLevel, "AssumeRole failed"}, {zapcore.WarnLevel, "timeout awaiting response headers"}},
		},
		{
			name: "STS error answer echoing the string to sign",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, func(w http.ResponseWriter, q url.Values) {
					q.Del("Signature")
					stsJSON(w, 400, map[string]string{
						"RequestId": "r", "HostId": "sts.aliyuncs.com", "Code": "SignatureDoesNotMatch",
						"Message": "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&" + url.QueryEscape(q.Encode()),
					})
				})
				stsFailure(t, logger, f.srv.URL, 0)
				return f.secrets(t)
			},
			want: []logged{{zapcore.WarnLevel, "SignatureDoesNotMatch: code: 400, Specified signature is not matched"}},
		},
		{
			name: "STS error answer echoing the parameters",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, func(w http.ResponseWriter, q url.Values) {
					stsJSON(w, 400, map[string]string{
						"RequestId": "r", "HostId": "sts.aliyuncs.com", "Code": "MissingParameter",
						"Message": fmt.Sprintf("bad request %v %s", q, q.Encode()),
					})
				})
				stsFailure(t, logger, f.srv.URL, 0)
				return f.secrets(t)
			},
			want: []logged{{zapcore.WarnLevel, "MissingParameter: code: 400, bad request"}},
		},
		{
			name: "STS internal error",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, stsRaw(500, `{"RequestId":"r","HostId":"sts.aliyuncs.com","Code":"InternalError","Message":"STS Server Internal Error happened."}`))
				stsFailure(t, logger, f.srv.URL, 0)
				return f.secrets(t)
			},
			want: []logged{{zapcore.WarnLevel, "InternalError: code: 500"}},
		},
		{
			name: "STS answers garbage",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, stsRaw(200, "garbage"))
				stsFailure(t, logger, f.srv.URL, 0)
				return f.secrets(t)
			},
			want: []logged{{zapcore.WarnLevel, "invalid character"}},
		},
		{
			name: "STS answers truncated JSON",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, stsRaw(200, `{"Credentials":{"AccessKeySecret":"`+issuedSecret+`","SecurityToken":"`+issuedToken+`"`))
				stsFailure(t, logger, f.srv.URL, 0)
				return append(f.secrets(t), issuedSecret, issuedToken)
			},
			want: []logged{{zapcore.WarnLevel, "unexpected EOF"}},
		},
		{
			name: "STS answers a JSON string",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, stsRaw(200, `"`+issuedToken+`"`))
				quotesAnswer(t, stsFailure(t, logger, f.srv.URL, 0), issuedToken)
				return append(f.secrets(t), issuedToken)
			},
			want: []logged{{zapcore.WarnLevel, "the answer is not a JSON object"}},
		},
		{
			name: "STS answers a field of the wrong type",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, func(w http.ResponseWriter, _ url.Values) {
					stsJSON(w, 200, map[string]any{"RequestId": "r", "Credentials": map[string]any{
						"AccessKeyId": "STS.id", "AccessKeySecret": issuedSecret, "SecurityToken": issuedToken, "Expiration": map[string]int{"x": 1},
					}})
				})
				// The SDK quotes the answer around the field, cutting
				// names short: only dropping the quote keeps it out.
				quotesAnswer(t, stsFailure(t, logger, f.srv.URL, 0), issuedSecret)
				return append(f.secrets(t), issuedSecret, issuedToken)
			},
			want: []logged{{zapcore.WarnLevel, "AssumeRoleResponseBodyCredentials.Expiration: fuzzyStringDecoder: not number or string or bool"}},
		},
		{
			name: "STS answers incomplete credentials",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				f := newLeakySTS(t, func(w http.ResponseWriter, _ url.Values) {
					stsJSON(w, 200, map[string]any{"RequestId": "r", "Credentials": map[string]any{
						"AccessKeySecret": issuedSecret, "SecurityToken": issuedToken, "Expiration": "2099-01-01T00:00:00Z",
					}})
				})
				stsFailure(t, logger, f.srv.URL, 0)
				return append(f.secrets(t), issuedSecret, issuedToken)
			},
			want: []logged{{zapcore.WarnLevel, "AssumeRole returned incomplete credentials"}},
		},
		{
			name: "key fetch answers 500",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				return failingCallback(t, logger, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, time.Second, keyURLWithQuery)
			},
			want: []logged{
				{zapcore.WarnLevel, "fetching callback public key failed"},
				{zapcore.WarnLevel, "https://gosspublic.alicdn.com/callback_pub_key_v2.pem"},
				{zapcore.WarnLevel, "status 500"},
				{zapcore.WarnLevel, "callback rejected"},
			},
		},
		{
			name: "key fetch times out",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				// Never answer before the fetch gives up: returning when the
				// request's context ends could still send an empty 200 first.
				return failingCallback(t, logger, func(http.ResponseWriter, *http.Request) { time.Sleep(time.Second) }, 200*time.Millisecond, keyURLWithQuery)
			},
			want: []logged{
				{zapcore.WarnLevel, "fetching callback public key failed"},
				// the client's timeout or the fetch's context, whichever fires first
				{zapcore.WarnLevel, "deadline exceeded"},
				{zapcore.WarnLevel, "callback rejected"},
			},
		},
		{
			name: "callback signature does not verify",
			provoke: func(t *testing.T, logger *zap.Logger) []string {
				h := callbackHandler(t)
				h.logger, h.verifier.logger = logger, logger
				sig, _ := base64.StdEncoding.DecodeString(e1Sig)
				sig[10] ^= 1
				bad := base64.StdEncoding.EncodeToString(sig)
				r := e1Request(func(r *http.Request, _ *string) { r.Header.Set("Authorization", bad) })
				if rec, rc := runCallback(t, h, r); rec.Code != http.StatusForbidden || rc.called {
					t.Fatalf("callback answered %d", rec.Code)
				}
				return []string{bad, e1Sig}
			},
			want: []logged{{zapcore.WarnLevel, "callback rejected"}, {zapcore.WarnLevel, "callback signature does not verify"}},
		},
	}
	levels := []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel}
	for _, level := range levels {
		for _, tc := range tests {
			t.Run(level.String()+"/"+tc.name, func(t *testing.T) {
				var buf syncBuffer
				enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
				logger := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), level))
				secrets := append(tc.provoke(t, logger), serverSecret)
				_ = logger.Sync()
				log := buf.String()
				text := logText(t, log)
				for _, s := range secrets {
					if len(s) < 8 {
						t.Fatalf("secret %q is too short to search for", s)
					}
					for _, form := range []string{s, url.QueryEscape(s)} {
						if strings.Contains(text, form) {
							t.Errorf("the log holds the secret %q:\n%s", form, log)
						}
					}
				}
				for _, w := range tc.want {
					if level <= w.level && !strings.Contains(text, w.text) {
						t.Errorf("the log does not say %q:\n%s", w.text, log)
					}
				}
				if level == zapcore.DebugLevel {
					t.Logf("log:\n%s", log)
				}
			})
		}
	}
}

// logText is the log as written plus the decoded string of every field, so
// that a secret escaped by the JSON encoder is found too.
func logText(t *testing.T, log string) string {
	var b strings.Builder
	b.WriteString(log)
	for line := range strings.Lines(log) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for _, v := range entry {
			fmt.Fprintf(&b, "\n%v", v)
		}
	}
	return b.String()
}

// syncBuffer is a bytes.Buffer that goroutines may log into at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRedactSecrets(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{
			"url.Error",
			`Post "http://127.0.0.1:39645/?AccessKeyId=testid&Action=AssumeRole&Signature=mxN%2BgI3hW%2FAOV%3D&SignatureNonce=fb20015b50898d15": dial tcp 127.0.0.1:39645: connect: connection refused`,
			`Post "http://127.0.0.1:39645/": dial tcp 127.0.0.1:39645: connect: connection refused`,
		},
		{
			"user info and fragment",
			`Get "https://user:pw@sts.example.com/a/b?x=1#f": EOF`,
			`Get "https://sts.example.com/a/b": EOF`,
		},
		{
			"bare query",
			`bad request /?SecurityToken=CAIS123&Signature=abc%2B%3D&SignatureMethod=HMAC-SHA1`,
			`bad request /?SecurityToken=REDACTED&Signature=REDACTED&SignatureMethod=HMAC-SHA1`,
		},
		{
			"string to sign",
			`server string to sign is:POST&%2F&AccessKeyId%3Dtestid%26Action%3DAssumeRole%26SignatureNonce%3Dabc%252B%26Timestamp%3D1`,
			`server string to sign is:POST&%2F&AccessKeyId%3DREDACTED%26Action%3DAssumeRole%26SignatureNonce%3DREDACTED%26Timestamp%3D1`,
		},
		{
			"JSON",
			`{"AccessKeySecret":"s3cr3t","SecurityToken": "tok","Other":"x"}`,
			`{"AccessKeySecret":"REDACTED","SecurityToken": "REDACTED","Other":"x"}`,
		},
		{
			"escaped JSON",
			`{\"AccessKeySecret\":\"s3cr3t\"}`,
			`{\"AccessKeySecret\":\"REDACTED\"}`,
		},
		{
			"url.Values",
			`map[AccessKeyId:[testid] Signature:[ab+c=] SignatureNonce:[n1]]`,
			`map[AccessKeyId:[REDACTED] Signature:[REDACTED] SignatureNonce:[REDACTED]]`,
		},
		{
			"header",
			`x-acs-security-token: CAIS123`,
			`x-acs-security-token: REDACTED`,
		},
		{
			"nothing to redact",
			`callback signature does not verify; SignatureDoesNotMatch: status 403`,
			`callback signature does not verify; SignatureDoesNotMatch: status 403`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := redactSecrets(tc.in); got != tc.want {
				t.Errorf("redactSecrets(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}
