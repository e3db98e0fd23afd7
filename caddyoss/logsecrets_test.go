package caddyoss

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

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
				h.logger, h.callback.verifier.logger = logger, logger
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
