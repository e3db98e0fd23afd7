package caddyoss

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A multipart upload whose callback the quota refuses is deleted, and
// Uppy's complete says so (403), not that the upload was stored. The
// quota key here is a query parameter, so that the completion can name
// another key than the creation did: its reservation is then no
// reservation there, and the key it names is full.
func TestQuotaUppyCompleteRefused(t *testing.T) {
	e := newQuotaEnv(t, "{http.request.uri.query.team}", "uploads 1 per 1h", confirmOpts{})
	created := e.sign(t, qCreate+"?team=a", "alice", map[string]any{"filename": "m.png", "type": "image/png"}).granted(t, "create")
	if _, err := e.ledger(t).Reserve(t.Context(), "b", 0, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	up, parts := e.multipartPart(t, created, "alice", randomBytes(200))
	before := refusals(qCbRoute, "uploads")
	status, body := (&uppyEnv{secEnv: e.secEnv}).call(t, "POST", up.path("/complete")+"&team=b", "alice", map[string]any{"parts": parts}, nil)
	if status != http.StatusForbidden || !strings.Contains(body, "deleted it") {
		t.Fatalf("complete over the quota: %d %s, want 403 saying the upload was deleted", status, body)
	}
	if _, ok := e.emu.Object(secBucket, up.Key); ok {
		t.Errorf("%s is still stored", up.Key)
	}
	if got := refusals(qCbRoute, "uploads"); got != before+1 {
		t.Errorf("callback refusals for uploads went from %v to %v, want one more", before, got)
	}
	if keys := e.appSawKeys(t); len(keys) != 0 {
		t.Errorf("the app heard of %v", keys)
	}
}
