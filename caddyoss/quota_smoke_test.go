package caddyoss

import (
	"bytes"
	"strings"
	"testing"
)

// A user's uploads through the post-policy route are reserved at signing,
// charged when OSS's callback arrives, and refused with 429 once the
// uploads per window are used; another user's quota is their own.
func TestQuotaSmoke(t *testing.T) {
	e := newConfirmEnv(t, confirmOpts{extra: `
		quota {
			key {http.request.header.X-User}
			uploads 2 per 1h
		}`})
	data := bytes.Repeat([]byte("q"), 100)
	for i := 0; i < 2; i++ {
		up := e.postObject(t, "alice", "a.png", "image/png", data)
		if up.status != 200 {
			t.Fatalf("upload %d: OSS answered %d %s", i, up.status, up.answer)
		}
	}
	status, p, body := e.get(t, "/oss/post-policy?filename=a.png&type=image/png&size=100", "alice")
	if status != 429 || !strings.Contains(body, `"reason":"uploads"`) {
		t.Fatalf("third signing: %d %s %v", status, body, p)
	}
	if up := e.postObject(t, "bob", "b.png", "image/png", data); up.status != 200 {
		t.Fatalf("bob: %d %s", up.status, up.answer)
	}
	if n := len(e.app.verified()); n != 3 {
		t.Fatalf("app saw %d uploads, want 3", n)
	}
}
