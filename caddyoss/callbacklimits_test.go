package caddyoss

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The limits the callback holds uploads to in these tests: newSecEnv's
// max_size 1KB and allow_types image/* application/pdf, and min_size.
const (
	limMin = 10
	limMax = 1000 // 1KB
)

// limitCase is one upload and what must become of it.
type limitCase struct {
	name        string
	size        int
	contentType string
	status      int // the callback's refusal OSS reports; 0: within the limits
}

// limitCases are generated: every size boundary ±1 with an allowed type,
// and allowed and refused types (case, parameters, look-alikes) at an
// allowed size.
func limitCases() []limitCase {
	var cases []limitCase
	for _, size := range []int{0, limMin - 1, limMin, limMin + 1, limMax - 1, limMax, limMax + 1, 4 * limMax} {
		c := limitCase{name: fmt.Sprintf("size %d", size), size: size, contentType: "image/png"}
		switch {
		case size > limMax:
			c.status = http.StatusRequestEntityTooLarge
		case size < limMin:
			c.status = http.StatusBadRequest
		}
		cases = append(cases, c)
	}
	for _, tc := range []struct {
		contentType string
		allowed     bool
	}{
		{"image/png", true},
		{"Image/PNG; charset=x", true},
		{"IMAGE/JPEG", true},
		{"image/svg+xml", true},
		{"application/pdf", true},
		{"Application/PDF; version=1.7", true},
		{"text/html", false},
		{"text/html; charset=utf-8", false},
		{"application/octet-stream", false},
		{"application/pdfx", false},
		{"imagex/png", false},
		{"application/x-pdf", false},
		{"video/mp4", false},
	} {
		c := limitCase{name: "type " + tc.contentType, size: 100, contentType: tc.contentType}
		if !tc.allowed {
			c.status = http.StatusUnsupportedMediaType
		}
		cases = append(cases, c)
	}
	return cases
}

func limitsRejected() float64 {
	return testutil.ToFloat64(ossMetrics.callbacks.WithLabelValues(callbackRejected, reasonLimits))
}

// checkLimitOutcome checks what became of one upload: within the limits it
// is stored and the app heard of it once; outside, the uploader got 203
// CallbackFailed naming the refusal's status, the object is gone, the app
// heard nothing of it and the refusal was counted.
func checkLimitOutcome(t *testing.T, env *secEnv, c limitCase, key string, uploadErr error, rejectedBefore float64) {
	t.Helper()
	_, stored := env.emu.Object(secBucket, key)
	var heard int
	for _, r := range env.app.all() {
		if r.form().Get("object") == key {
			heard++
		}
	}
	rejected := limitsRejected() - rejectedBefore
	if c.status == 0 {
		if uploadErr != nil || !stored || heard != 1 || rejected != 0 {
			t.Errorf("%s: within the limits: err %v, stored %v, app heard %d, counted %v", c.name, uploadErr, stored, heard, rejected)
		}
		return
	}
	var se oss.ServiceError
	if !errors.As(uploadErr, &se) || se.StatusCode != http.StatusNonAuthoritativeInfo || se.Code != "CallbackFailed" ||
		!strings.Contains(se.Message, fmt.Sprintf("Error status : %d.", c.status)) {
		t.Errorf("%s: the uploader got %v, want 203 CallbackFailed with status %d", c.name, uploadErr, c.status)
	}
	if stored || heard != 0 || rejected != 1 {
		t.Errorf("%s: outside the limits: stored %v, app heard %d, counted %v", c.name, stored, heard, rejected)
	}
}

// STS credentials let the uploader write any size and type: the callback
// it sends with the issued parameters holds what OSS stored to the limits.
func TestCallbackLimitsSTS(t *testing.T) {
	env := newSecEnv(t, fmt.Sprintf("min_size %d", limMin))
	b, param, vars := env.stsUploader(t, "bob")
	cases := limitCases()
	refused := 0
	for i, lc := range cases {
		key := fmt.Sprintf("uploads/bob/lim-%d", i)
		before := limitsRejected()
		err := b.PutObject(key, bytes.NewReader(bytes.Repeat([]byte{'x'}, lc.size)), oss.ContentType(lc.contentType),
			oss.Callback(param), oss.CallbackVar(vars))
		checkLimitOutcome(t, env, lc, key, err, before)
		if lc.status != 0 {
			refused++
		}
	}
	if refused == 0 || refused == len(cases) {
		t.Fatalf("%d of %d cases refused: the variants test nothing", refused, len(cases))
	}
}

// A presigned PUT carries any body: the callback in its URL holds the size
// OSS stored to max_size and min_size. (Its type is signed, so OSS itself
// refuses another.)
func TestCallbackLimitsPresign(t *testing.T) {
	env := newSecEnv(t, fmt.Sprintf("min_size %d", limMin))
	for _, lc := range limitCases() {
		if lc.contentType != "image/png" {
			continue
		}
		before := limitsRejected()
		// The size hint is within the limits; the body is what it is.
		_, p, body := env.get(t, "/oss/presign?filename=a.png&type=image/png&size=100", "carol")
		if p["url"] == nil {
			t.Fatalf("presign: %s", body)
		}
		key := p["key"].(string)
		req, _ := http.NewRequest("PUT", p["url"].(string), bytes.NewReader(bytes.Repeat([]byte{'x'}, lc.size)))
		req.Header.Set("Content-Type", "image/png")
		resp, err := env.toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var uploadErr error
		if resp.StatusCode != http.StatusOK {
			uploadErr = oss.ServiceError{StatusCode: resp.StatusCode, Code: between(string(answer), "<Code>", "</Code>"),
				Message: between(string(answer), "<Message>", "</Message>")}
		}
		checkLimitOutcome(t, env, lc, key, uploadErr, before)
	}
}

// PostObject has OSS enforce the limits; uploads within them reach the
// app, and the callback check refuses nothing OSS let through.
func TestCallbackLimitsPostObject(t *testing.T) {
	env := newSecEnv(t, fmt.Sprintf("min_size %d", limMin))
	for _, size := range []int{limMin, limMax} {
		before := limitsRejected()
		_, p, body := env.get(t, fmt.Sprintf("/oss/post-policy?filename=a.png&type=image/png&size=%d", size), "dave")
		fields := p["fields"].(map[string]any)
		if fields == nil {
			t.Fatalf("post-policy: %s", body)
		}
		var ff [][2]string
		for k, v := range fields {
			ff = append(ff, [2]string{k, v.(string)})
		}
		status, answer := env.postForm(t, p["url"].(string), ff, "image/png", bytes.Repeat([]byte{'x'}, size))
		var err error
		if status != http.StatusOK {
			err = fmt.Errorf("status %d: %s", status, answer)
		}
		checkLimitOutcome(t, env, limitCase{name: fmt.Sprintf("PostObject size %d", size), size: size, contentType: "image/png"},
			p["key"].(string), err, before)
	}
}

// limitViolation by size and stored type, and the status each refusal
// carries; with no limits configured nothing is refused.
func TestLimitViolation(t *testing.T) {
	limited := &Handler{MinSize: limMin, MaxSize: limMax, AllowTypes: []string{"image/*", "application/pdf"}}
	for _, lc := range limitCases() {
		why, status := limited.limitViolation(int64(lc.size), lc.contentType)
		if status != lc.status || (why == "") != (lc.status == 0) {
			t.Errorf("%s: %q %d, want status %d", lc.name, why, status, lc.status)
		}
	}
	for _, tc := range []struct {
		size int64
		typ  string
		want string
	}{
		{limMax + 1, "image/png", "size 1001 exceeds max_size 1000"},
		{limMin - 1, "image/png", "size 9 is below min_size 10"},
		{100, "text/html", `type "text/html" is not in allow_types (image/*, application/pdf)`},
		{100, "", `type "" is not in allow_types`},
		{100, "image", `type "image" is not in allow_types`},
	} {
		if why, _ := limited.limitViolation(tc.size, tc.typ); !strings.Contains(why, tc.want) {
			t.Errorf("%d %q: %q, want %q", tc.size, tc.typ, why, tc.want)
		}
	}
	unlimited := &Handler{}
	for _, size := range []int64{0, 1, 5 << 30} {
		if why, status := unlimited.limitViolation(size, "text/html"); why != "" || status != 0 {
			t.Errorf("no limits, size %d: %q %d", size, why, status)
		}
	}
}

// When OSS cannot delete the object, the callback is still refused (the
// app never hears of it), the refusal says the deletion failed, and an
// error line names the object. OSS's answer without a size is a 502.
func TestEnforceLimitsDeleteFails(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.Endpoint = "http://127.0.0.1:1" // nothing listens: DeleteObject fails
		h.MaxSize = limMax
		h.Callback = &CallbackConfig{URL: "http://127.0.0.1:1/cb"}
	})
	core, logs := observer.New(zap.WarnLevel)
	h.logger = zap.New(core)
	req := httptest.NewRequest("POST", "/oss/callback", nil)
	stored := http.Header{"Content-Length": {"1001"}, "Content-Type": {"image/png"}}
	err := h.callback.enforceLimits(req.Context(), req, "uploads/x.png", stored)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusRequestEntityTooLarge || callbackReason(err) != reasonLimits ||
		!strings.Contains(err.Error(), "size 1001 exceeds max_size 1000") || !strings.Contains(err.Error(), "deleting it failed") {
		t.Fatalf("error %v", err)
	}
	entries := logs.FilterMessage("deleting an upload outside the limits failed: it stays stored").All()
	if len(entries) != 1 || entries[0].ContextMap()["object"] != "uploads/x.png" {
		t.Errorf("logs %+v", logs.All())
	}
	// Within the limits nothing is deleted: no OSS call, no error.
	if err := h.callback.enforceLimits(req.Context(), req, "uploads/x.png", http.Header{"Content-Length": {"1000"}}); err != nil {
		t.Errorf("within the limits: %v", err)
	}
	err = h.callback.enforceLimits(req.Context(), req, "uploads/x.png", http.Header{})
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway || callbackReason(err) != reasonConfirm {
		t.Errorf("no size: %v", err)
	}
}

// between returns the text of s between the first open and the next close.
func between(s, open, close string) string {
	_, rest, ok := strings.Cut(s, open)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, close)
	return v
}
