package caddyoss

// What the uploader is answered for each behaviour of the app, queued and
// direct.

import (
	"strings"
	"testing"
	"time"
)

func TestDeliveryAnswers(t *testing.T) {
	e := newDeliveryEnv(t, "")
	for _, tc := range []struct {
		mode       string
		wantStatus int
		wantBody   string
	}{
		{"up", 200, `{"saved":true}`},
		{"chunked", 200, `{"saved":true}`}, // re-sent with a Content-Length, which OSS requires
		{"4xx", 203, "CallbackFailed"},     // the app's decision: not retried
		{"slow", 200, `"status":"queued"`},
		{"5xx", 200, `"status":"queued"`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e.app.setMode(tc.mode)
			before := len(e.app.requests())
			status, body := e.upload(t, "content for "+tc.mode)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Fatalf("uploader got %d %s", status, body)
			}
			e.app.setMode("up")
			got := e.app.requests()[before:]
			if len(got) == 0 || got[0].header.Get("Idempotency-Key") == "" {
				t.Fatalf("the app received %d requests", len(got))
			}
			key := got[0].header.Get("Idempotency-Key")
			if tc.wantBody == `"status":"queued"` {
				if !strings.Contains(body, key) {
					t.Errorf("the queued answer %s does not name %s", body, key)
				}
				// Delivered later, with the same key.
				deadline := time.Now().Add(15 * time.Second)
				for {
					all := e.app.requests()[before:]
					last := all[len(all)-1]
					if len(all) >= 2 && last.header.Get("Idempotency-Key") == key {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("not delivered again: %d requests", len(all))
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			if tc.mode == "4xx" {
				time.Sleep(3 * time.Second) // longer than the first retry would wait
				if n := len(e.app.requests()) - before; n != 1 {
					t.Errorf("a 4xx answer was retried: %d requests", n)
				}
			}
		})
	}
}

// delivery direct relays the upstream's answer, normalized, and keeps
// nothing: a slow app makes OSS report CallbackFailed.
func TestDeliveryDirect(t *testing.T) {
	e := newDeliveryEnv(t, "delivery direct")
	if status, body := e.upload(t, "direct"); status != 200 || body != `{"saved":true}` {
		t.Fatalf("%d %s", status, body)
	}
	e.app.setMode("down")
	status, body := e.upload(t, "direct, app down")
	if status != 203 {
		t.Fatalf("%d %s", status, body)
	}
	e.app.setMode("up")
	time.Sleep(3 * time.Second)
	if n := len(e.app.requests()); n != 1 {
		t.Errorf("direct delivery retried: %d requests", n)
	}
}
