package caddyoss

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
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

// quotaFaults fails the reads and writes of the quota ledgers while on.
type quotaFaults struct {
	certmagic.Storage
	on atomic.Bool
}

func (s *quotaFaults) fail(key string) error {
	if s.on.Load() && strings.HasPrefix(key, quotaPrefix) {
		return errors.New("injected: " + key)
	}
	return nil
}

func (s *quotaFaults) Store(ctx context.Context, key string, value []byte) error {
	if err := s.fail(key); err != nil {
		return err
	}
	return s.Storage.Store(ctx, key, value)
}

func (s *quotaFaults) Load(ctx context.Context, key string) ([]byte, error) {
	if err := s.fail(key); err != nil {
		return nil, err
	}
	return s.Storage.Load(ctx, key)
}

func (s *quotaFaults) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if err := s.fail(prefix); err != nil {
		return nil, err
	}
	return s.Storage.List(ctx, prefix, recursive)
}

// The quota routes in process: the empty key of a handler whose key_prefix
// is empty (?key= or ?key), a reset that keeps live reservations, a
// storage failure (503, and nothing changed), and two handlers of one id
// as during a reload: either answers, with the same records.
func TestAdminQuotaInProcess(t *testing.T) {
	st := &quotaFaults{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	handler := func() *Handler {
		return testHandler(t, func(h *Handler) {
			h.storage = st
			h.MaxSize = 1 << 20
			h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
			h.Quota = &QuotaConfig{Pending: 2, Window: caddy.Duration(time.Hour)}
		})
	}
	h, reloaded := handler(), handler()
	if h.id != reloaded.id {
		t.Fatalf("one config, two ids: %s %s", h.id, reloaded.id)
	}
	a := &AdminAPI{storage: st, logger: zap.NewNop(), now: time.Now}
	if status, _ := quotaSign(t, h); status != 200 {
		t.Fatalf("signing: %d", status)
	}
	q := "/oss_upload/quota/" + h.id
	for _, tc := range []struct {
		method, target string
		faults         bool
		status         int
		check          func(*testing.T, map[string]any, http.Header)
	}{
		{"GET", q + "?key=", false, 200, wantUsage("key= pending=1 uploads=1 remaining.pending=1 remaining.bytes=-1 window=1h0m0s")},
		{"GET", q + "?key", false, 200, wantUsage("pending=1")},
		{"GET", q + "?key=x", false, 200, wantUsage("key=x pending=0 remaining.pending=2")},
		{"GET", q, false, 400, errorSays("key is missing")},
		{"GET", q + "?key=%00", false, 400, errorSays("control character")},
		{"POST", q + "/reset?key=", false, 200, wantUsage("reset=true pending=1 uploads=1")}, // live reservations stay
		{"GET", q + "?key=", true, 503, errorSays("injected")},
		{"POST", q + "/reset?key=", true, 503, errorSays("may still take effect")},
		{"GET", q + "?key=", false, 200, wantUsage("pending=1 uploads=1")},
		{"GET", "/oss_upload/", false, 200, func(t *testing.T, b map[string]any, _ http.Header) {
			n := 0
			for _, e := range b["handlers"].([]any) {
				if e := e.(map[string]any); e["id"] == h.id {
					n++
					wantUsage("quota.pending=2 quota.uploads=0 quota.window=1h0m0s")(t, e, nil)
				}
			}
			if n != 1 {
				t.Errorf("the handler is listed %d times: %v", n, b)
			}
		}},
	} {
		t.Run(tc.method+" "+strings.TrimPrefix(tc.target, "/oss_upload/"), func(t *testing.T) {
			st.on.Store(tc.faults)
			defer st.on.Store(false)
			status, header, body := adminDo(t, a, tc.method, tc.target)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if tc.check != nil {
				tc.check(t, body, header)
			}
		})
	}
	// Both ledgers of the id count the same records: the second signing
	// through the other handler fills the pending limit, the third is
	// refused by the first.
	if status, _ := quotaSign(t, reloaded); status != 200 {
		t.Fatalf("signing through the reloaded handler: %d", status)
	}
	if status, _ := quotaSign(t, h); status != 429 {
		t.Fatalf("a third pending signing: %d, want 429", status)
	}
}
