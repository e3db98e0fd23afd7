package caddyoss

// The environment of the quota's end-to-end tests: confirmEnv (a running
// Caddy, ossemu and the recording app) with a quota block, whose key is
// the X-User header unless a test names another. The tests sign in every
// mode, read the answers' status, headers and quota member, upload what
// was signed, and read the live ledger of the Caddy running in the test
// process.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/quota"
)

// The signing requests of each mode, for a PNG (confirmEnv allows image/*,
// max_size 1KB, that is 1000 bytes, min_size 2).
const (
	qPolicy   = "/oss/post-policy?filename=a.png&type=image/png"
	qPresign  = "/oss/presign?filename=a.png&type=image/png"
	qSTS      = "/oss/sts"
	qParams   = "/oss/uppy/s3/params?filename=a.png&type=image/png"
	qCreate   = "/oss/uppy/s3/multipart"
	qMaxSize  = 1000
	qUserKey  = "{http.request.header.X-User}"
	qCbRoute  = "callback"
	qCfRoute  = "confirm"
	qNoHeader = -1
)

type quotaEnv struct {
	*confirmEnv
}

// newQuotaEnv runs confirmEnv with a quota block: key (the X-User header
// when "") and limits, lines such as "uploads 2 per 1h".
func newQuotaEnv(t *testing.T, key, limits string, opts confirmOpts) *quotaEnv {
	t.Helper()
	if key == "" {
		key = qUserKey
	}
	opts.extra = "quota {\n\t\t\tkey " + key + "\n\t\t\t" + strings.ReplaceAll(limits, "\n", "\n\t\t\t") + "\n\t\t}\n\t\t" + opts.extra
	return &quotaEnv{newConfirmEnv(t, opts)}
}

// signAnswer is a signing route's answer, and when it was asked.
type signAnswer struct {
	status        int
	header        http.Header
	body          map[string]any
	raw           string
	before, after time.Time
}

// sign asks a route of the site at localhost:9080 as user (as no one when
// ""): GET, or POST with body as JSON when body is not nil.
func (e *quotaEnv) sign(t *testing.T, target, user string, body any) signAnswer {
	t.Helper()
	return e.signAt(t, "http://localhost:9080"+target, user, body)
}

// signAt is sign at an absolute URL.
func (e *quotaEnv) signAt(t *testing.T, target, user string, body any) signAnswer {
	t.Helper()
	method, rd := "GET", io.Reader(nil)
	if body != nil {
		b, _ := json.Marshal(body)
		method, rd = "POST", bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, target, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	a := signAnswer{before: time.Now()}
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.after = time.Now()
	a.status, a.header, a.raw = resp.StatusCode, resp.Header, string(b)
	_ = json.Unmarshal(b, &a.body)
	return a
}

// create starts an Uppy multipart upload as user.
func (e *quotaEnv) create(t *testing.T, user string) signAnswer {
	t.Helper()
	return e.sign(t, qCreate, user, map[string]any{"filename": "m.png", "type": "image/png"})
}

// granted fails the test unless a is a 200.
func (a signAnswer) granted(t *testing.T, what string) signAnswer {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, a.status, a.raw)
	}
	return a
}

// reservation is the reservation id a granted answer issued, from
// whichever member its mode carries the callback variables in.
func (a signAnswer) reservation(t *testing.T) string {
	t.Helper()
	return a.vars(t)[quotaIDVar]
}

// vars are the custom callback variables a granted answer issued (from its
// confirm token, which every mode of confirmEnv carries).
func (a signAnswer) vars(t *testing.T) map[string]string {
	t.Helper()
	c, ok := a.body["confirm"]
	if !ok {
		c = a.body["Confirm"]
	}
	_, vars, err := callback.ParseConfirmToken(confirmOf(t, c).Token)
	if err != nil {
		t.Fatal(err)
	}
	return vars
}

// signedSomething reports whether an answer carries anything to upload
// with.
func (a signAnswer) signedSomething() bool {
	for _, k := range []string{"url", "policy", "fields", "AccessKeyId", "SecurityToken", "uploadId", "confirm", "Confirm"} {
		if _, ok := a.body[k]; ok {
			return true
		}
	}
	return strings.Contains(a.raw, "Signature") || strings.Contains(a.raw, "signature")
}

// checkRemaining asserts a granted answer's X-Quota-Remaining-* headers
// (qNoHeader: absent, for a limit that is not set).
func checkRemaining(t *testing.T, a signAnswer, bytes, uploads, pending int64) {
	t.Helper()
	for _, h := range []struct {
		name string
		want int64
	}{{"X-Quota-Remaining-Bytes", bytes}, {"X-Quota-Remaining-Uploads", uploads}, {"X-Quota-Remaining-Pending", pending}} {
		got, present := a.header[h.name]
		switch {
		case h.want == qNoHeader && present:
			t.Errorf("%s: %v, want none (no such limit)", h.name, got)
		case h.want != qNoHeader && (len(got) != 1 || got[0] != strconv.FormatInt(h.want, 10)):
			t.Errorf("%s: %v, want %d", h.name, got, h.want)
		}
	}
}

// quotaMember is the quota member of a 429.
type quotaMember struct {
	Reason     string `json:"reason"`
	Limit      int64  `json:"limit"`
	Used       int64  `json:"used"`
	Asked      int64  `json:"asked"`
	RetryAt    string `json:"retry_at"`
	RetryAfter *int64 `json:"retry_after"`
}

// want429 is a refusal a test expects; retryFrom and retryTo bound its
// retry_at. (With bytes at least max_size, every signing fits an empty
// quota: a refusal always tells when to retry.)
type want429 struct {
	reason             string
	limit, used, asked int64
	retryFrom, retryTo time.Time
}

// checkRefused asserts a 429 and returns when it says room frees up: the
// JSON quota member as wanted, nothing signed, and a Retry-After equal to
// retry_after that is the wait from the moment of the answer to retry_at,
// rounded up to a whole second.
func checkRefused(t *testing.T, a signAnswer, w want429) time.Time {
	t.Helper()
	var got struct {
		Error string       `json:"error"`
		Quota *quotaMember `json:"quota"`
	}
	if a.status != http.StatusTooManyRequests || json.Unmarshal([]byte(a.raw), &got) != nil || got.Quota == nil || got.Error == "" {
		t.Fatalf("want a 429 with an error and a quota member, got %d %s", a.status, a.raw)
	}
	if a.signedSomething() {
		t.Errorf("a refused request was signed: %s", a.raw)
	}
	q := got.Quota
	if q.Reason != w.reason || q.Limit != w.limit || q.Used != w.used || q.Asked != w.asked {
		t.Errorf("quota %+v, want reason %s limit %d used %d asked %d", *q, w.reason, w.limit, w.used, w.asked)
	}
	ra := a.header.Get("Retry-After")
	at, err := time.Parse(time.RFC3339, q.RetryAt)
	if err != nil || q.RetryAfter == nil {
		t.Fatalf("no retry_at or retry_after: %s", a.raw)
	}
	if ra != strconv.FormatInt(*q.RetryAfter, 10) {
		t.Errorf("Retry-After %q, but retry_after %d", ra, *q.RetryAfter)
	}
	if at.Before(w.retryFrom) || at.After(w.retryTo) {
		t.Errorf("retry_at %s, want within [%s, %s]", at, w.retryFrom.UTC(), w.retryTo.UTC())
	}
	lo, hi := max(1, ceilSeconds(at.Sub(a.after))), max(1, ceilSeconds(at.Sub(a.before)))
	if *q.RetryAfter < lo || *q.RetryAfter > hi {
		t.Errorf("retry_after %d, want the wait to %s from the answer: %d to %d s", *q.RetryAfter, at, lo, hi)
	}
	if !strings.Contains(got.Error, q.Reason) && !strings.Contains(got.Error, quotaUnit(quota.Reason(q.Reason))) {
		t.Errorf("the message %q does not name the limit", got.Error)
	}
	return at
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// secondOf bounds a reservation's expiry: the signature's expiry rounded
// up to a whole second lies within [s, s+1s] of its truncated second s.
func secondOf(unix int64) (time.Time, time.Time) {
	return time.Unix(unix, 0), time.Unix(unix+1, 0)
}

// ledger is the live ledger of the test's handler.
func (e *quotaEnv) ledger(t *testing.T) *quota.Ledger {
	t.Helper()
	return ledgerOf(t, e.handlerID)
}

// ledgerOf is the one live ledger of handler id.
func ledgerOf(t *testing.T, id string) *quota.Ledger {
	t.Helper()
	var found []*quota.Ledger
	liveLedgers.Range(func(k, v any) bool {
		if v.(string) == id {
			found = append(found, k.(*quota.Ledger))
		}
		return true
	})
	if len(found) != 1 {
		t.Fatalf("%d live ledgers for handler %s, want 1", len(found), id)
	}
	return found[0]
}

// usage is what counts against key now.
func (e *quotaEnv) usage(t *testing.T, key string) quota.Usage {
	t.Helper()
	u, err := e.ledger(t).Usage(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// checkUsage asserts key's usage: bytes, uploads, pending.
func (e *quotaEnv) checkUsage(t *testing.T, key string, bytes, uploads, pending int64) {
	t.Helper()
	if u := e.usage(t, key); u.Bytes != bytes || u.Uploads != uploads || u.Pending != pending {
		t.Errorf("usage of %q: bytes %d uploads %d pending %d, want %d %d %d", key, u.Bytes, u.Uploads, u.Pending, bytes, uploads, pending)
	}
}

// postWith uploads data with a PostObject answer (the post-policy
// route's, or Uppy's params), fields as given, and returns OSS's answer.
func (e *quotaEnv) postWith(t *testing.T, a signAnswer, data []byte, edit func(map[string]string)) (int, string) {
	t.Helper()
	fields := map[string]string{}
	for k, v := range a.body["fields"].(map[string]any) {
		fields[k] = v.(string)
	}
	if edit != nil {
		edit(fields)
	}
	var list [][2]string
	for k, v := range fields {
		list = append(list, [2]string{k, v})
	}
	return e.postForm(t, a.body["url"].(string), list, "image/png", data)
}

// policyMax is the maximum of the content-length-range a PostObject
// answer's policy pins.
func policyMax(t *testing.T, a signAnswer) int64 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(a.body["fields"].(map[string]any)["policy"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Conditions []any }
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Conditions {
		if l, ok := c.([]any); ok && len(l) == 3 && l[0] == "content-length-range" {
			return int64(l[2].(float64))
		}
	}
	t.Fatalf("no content-length-range in %s", raw)
	return 0
}

// stsFrom is an SDK client with the credentials of an STS answer.
func (e *quotaEnv) stsFrom(t *testing.T, a signAnswer) stsSession {
	t.Helper()
	return e.stsSessionOf(t, a.body)
}

// putCallback stores data below the session's prefix with the callback
// headers of its answer, vars replaced when not "", and returns the
// uploader's error: nil, or OSS's 203 CallbackFailed.
func (s stsSession) putCallback(key string, data []byte, vars string) error {
	hdr := s.answer["CallbackHeaders"].(map[string]any)
	if vars == "" {
		vars = hdr["x-oss-callback-var"].(string)
	}
	return s.bucket.PutObject(key, bytes.NewReader(data), oss.ContentType("image/png"),
		oss.Callback(hdr["x-oss-callback"].(string)), oss.CallbackVar(vars))
}

// isCallbackFailed reports whether err is OSS's 203 CallbackFailed for a
// callback Caddy answered with status.
func isCallbackFailed(err error, status int) bool {
	se, ok := err.(oss.ServiceError)
	return ok && se.StatusCode == http.StatusNonAuthoritativeInfo && se.Code == "CallbackFailed" &&
		strings.Contains(se.Message, fmt.Sprintf("Error status : %d.", status))
}

// multipartPart uploads data as the one part of the Uppy multipart
// upload a created, as user, and returns the upload and its parts list.
func (e *quotaEnv) multipartPart(t *testing.T, a signAnswer, user string, data []byte) (uppyUpload, []map[string]any) {
	t.Helper()
	up := uppyUpload{Key: a.body["key"].(string), UploadID: a.body["uploadId"].(string)}
	etag := (&uppyEnv{secEnv: e.secEnv}).putPart(t, user, up, 1, data)
	return up, []map[string]any{{"PartNumber": 1, "ETag": etag}}
}

// complete completes an Uppy multipart upload under the upload id sealed
// as user, and returns the answer.
func (e *quotaEnv) complete(t *testing.T, up uppyUpload, sealed, user string, parts []map[string]any) (int, string) {
	t.Helper()
	up.UploadID = sealed
	return (&uppyEnv{secEnv: e.secEnv}).call(t, "POST", up.path("/complete"), user, map[string]any{"parts": parts}, nil)
}

// refusals is caddy_oss_quota_refusals_total{route, reason}.
func refusals(route, reason string) float64 {
	return testutil.ToFloat64(ossMetrics.quotaRefusals.WithLabelValues(route, reason))
}

// appSawKeys are the object keys of the verified requests the app got.
func (e *quotaEnv) appSawKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, r := range e.app.verified() {
		keys = append(keys, appFields(t, r.body)["object"])
	}
	return keys
}

// eventually calls try until it reports true, at most until within has
// passed.
func eventually(t *testing.T, within time.Duration, what string, try func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !try(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}
