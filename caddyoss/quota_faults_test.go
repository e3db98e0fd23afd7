package caddyoss

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// When the quota's records fail, a signing route answers 503 and signs
// nothing, and a verified upload is neither charged nor refused: the
// callback gets 503, the object is kept (nothing is deleted), and its
// event is released, so a later copy (a confirm) is fresh and is charged
// once the records are back.
func TestQuotaStorageFailures(t *testing.T) {
	st := &quotaFaults{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	h := testHandler(t, func(h *Handler) {
		h.storage = st
		h.MaxSize = 1 << 20
		h.Callback = &CallbackConfig{URL: "https://app.example.com/oss/callback"}
		h.Quota = &QuotaConfig{Uploads: 5}
	})
	st.on.Store(true)
	if status, _ := quotaSign(t, h); status != http.StatusServiceUnavailable {
		t.Errorf("signing with the quota's records failing: %d, want 503", status)
	}
	st.on.Store(false)

	ctx := t.Context()
	res, err := h.quota.ledger.Reserve(ctx, ledgerKey(""), 1<<20, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	const object = "k.png"
	facts := map[string]string{"x:" + quotaKeyVar: "", "x:" + quotaIDVar: res.ID, "size": "100", "object": object}
	newEvent := func() *delivery.Event {
		return &delivery.Event{ID: callback.EventID(h.id, h.Bucket, object, "etag", "binding"), Object: object,
			Expires: time.Now().Add(time.Hour), Header: map[string]string{}}
	}
	begin := func() *delivery.Event {
		t.Helper()
		ev := newEvent()
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a held event waits for its lock
		defer cancel()
		claim, err := h.callback.events.Begin(bctx, ev)
		if err != nil || !claim.Fresh {
			t.Fatalf("claim: %+v %v, want a fresh claim", claim, err)
		}
		return ev
	}
	req := httptest.NewRequest("POST", "/oss/callback", nil)

	st.on.Store(true)
	ev := begin()
	err = h.callback.settleQuota(ctx, req, ev, facts, viaCallback) // a delete would panic: no OSS client here
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || callbackReason(err) != reasonStorage {
		t.Fatalf("settling with the quota's records failing: %v, want 503 storage", err)
	}
	st.on.Store(false)

	ev = begin() // released: fresh again
	if err := h.callback.settleQuota(ctx, req, ev, facts, viaConfirm); err != nil {
		t.Fatalf("settling once the records are back: %v", err)
	}
	h.callback.events.Unhold(ctx, ev.ID)
	u, err := h.quota.ledger.Usage(ctx, ledgerKey(""))
	if err != nil {
		t.Fatal(err)
	}
	if u.Uploads != 1 || u.Bytes != 100 || u.Pending != 0 {
		t.Errorf("usage %+v, want the one upload charged its 100 bytes in place of its reservation", u)
	}
}

// With handle_errors routes, a quota refusal goes to them with its status,
// message and Retry-After, as Caddy's own errors do.
func TestQuotaRefusalHandleErrors(t *testing.T) {
	e := newQuotaEnv(t, "", "uploads 1 per 1h", confirmOpts{})
	config := strings.Replace(e.config, "\treverse_proxy ", "\thandle_errors {\n\t\trespond \"{http.error.status_code}: {http.error.message}\"\n\t}\n\treverse_proxy ", 1)
	e.tester.InitServer(config, "caddyfile")
	e.sign(t, qPolicy, "alice", nil).granted(t, "first signing")
	a := e.sign(t, qPolicy, "alice", nil)
	if a.status != http.StatusTooManyRequests || !strings.HasPrefix(a.raw, "429: upload quota exceeded: 1 of 1 uploads per window used") {
		t.Fatalf("refusal through handle_errors: %d %q", a.status, a.raw)
	}
	// The first policy's reservation, unused, lapses when it expires (15m).
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 890 || s > 901 {
		t.Errorf("Retry-After %q, want the first policy's 15 minutes", a.header.Get("Retry-After"))
	}
}
