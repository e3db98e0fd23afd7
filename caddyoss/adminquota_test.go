package caddyoss

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// quotaSign asks h's post-policy route for a signature of a 100-byte PNG
// and returns the status and the X-Quota-Remaining-Pending header.
func quotaSign(t *testing.T, h *Handler) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := withReplacer(httptest.NewRequest("GET", "/oss/post-policy?filename=a.png&type=image/png&size=100", nil))
	if err := h.ServeHTTP(rec, req, nextMustNotRun(t)); err != nil {
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) {
			t.Fatalf("post-policy: %v", err)
		}
		return he.StatusCode, ""
	}
	return rec.Code, rec.Header().Get("X-Quota-Remaining-Pending")
}

// A handler whose key_prefix is empty has one quota for the whole site,
// under the empty key: its signings are counted, not refused with 503.
func TestQuotaEmptyKeyPrefix(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.MaxSize = 1 << 20
		h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
		h.Quota = &QuotaConfig{Pending: 1}
	})
	if status, left := quotaSign(t, h); status != 200 || left != "0" {
		t.Fatalf("first signing: %d, remaining pending %q", status, left)
	}
	if status, _ := quotaSign(t, h); status != 429 {
		t.Fatalf("second signing: %d, want 429 (one pending at once)", status)
	}
}
