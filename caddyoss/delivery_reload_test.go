package caddyoss

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A reload while callbacks are queued neither loses nor duplicates them.
func TestDeliveryAcrossReload(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	for i := range 5 {
		if status, body := e.upload(t, fmt.Sprintf("before reload %d", i)); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
	e.tester.InitServer(strings.Replace(e.config, "answer_within 1s", "answer_within 2s", 1), "caddyfile")
	e.app.setMode("up")
	e.waitDelivered(t, 5, 30*time.Second)
	time.Sleep(2 * time.Second) // nothing more arrives
	keys := e.waitDelivered(t, 5, 0)
	if len(keys) != 5 {
		t.Fatalf("%d of 5 delivered", len(keys))
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}

// Reloads in the middle of a burst of uploads, with the app down: every
// callback the uploaders were told is queued reaches the app once when it
// comes back, promptly (the new configuration's queue takes over what the
// old one recorded, including during the handover), and no upload reaches
// it twice.
func TestDeliveryReloadDuringBurst(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	var mu sync.Mutex
	queued := map[string]bool{} // Idempotency-Keys of the uploads told "queued"
	uploads := 0
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				content := fmt.Sprintf("burst %d-%d", w, i)
				status, body, err := e.tryUpload(content)
				if err != nil {
					t.Errorf("%s: %v", content, err)
					return
				}
				var answer struct {
					Status string `json:"status"`
					Key    string `json:"idempotency_key"`
				}
				_ = json.Unmarshal([]byte(body), &answer)
				if status == 200 && (answer.Status != "queued" || answer.Key == "") {
					t.Errorf("%s: told %d %s by a down app", content, status, body)
				}
				mu.Lock()
				uploads++
				if status == 200 {
					queued[answer.Key] = true
				}
				mu.Unlock()
			}
		}()
	}
	for _, within := range []string{"answer_within 2s", "answer_within 1500ms"} {
		time.Sleep(300 * time.Millisecond)
		e.tester.InitServer(strings.Replace(e.config, "answer_within 1s", within, 1), "caddyfile")
	}
	wg.Wait()
	e.app.setMode("up")
	// The queue rescans every 10 s: each callback arrives well within 30 s,
	// not at the next reload.
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys := e.waitDelivered(t, 0, 0)
		missing := 0
		for k := range queued {
			if keys[k] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d queued callbacks not delivered within 30 s", missing, len(queued))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	for k, n := range e.waitDelivered(t, 0, 0) {
		if n != 1 {
			t.Errorf("%s delivered %d times (told queued: %v)", k, n, queued[k])
		}
	}
	if len(queued) < uploads*2/3 {
		t.Errorf("only %d of %d uploads told 200 across the reloads", len(queued), uploads)
	}
}

// After a reload that puts another route in front of the callback path, a
// queued callback's retries reach the app through that route unmarked:
// only the handler that queued an event says it is verified. The event
// stays owed, and is delivered, verified and once, when the handler is in
// the way again.
func TestDeliveryRetryThroughAnotherRoute(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	if status, body := e.upload(t, "queued, then intercepted"); status != 200 || !strings.Contains(body, `"queued"`) {
		t.Fatalf("%d %s", status, body)
	}
	site := e.config[strings.Index(e.config, "http://localhost:9080 {"):]
	body := strings.TrimSuffix(strings.TrimPrefix(site, "http://localhost:9080 {"), "}")
	intercepted := strings.Replace(e.config, site, "http://localhost:9080 {\n\thandle /oss/callback {\n\t\treverse_proxy "+
		e.app.addr+"\n\t}\n\thandle {"+body+"}\n}", 1)
	e.tester.InitServer(intercepted, "caddyfile")
	e.app.setMode("up")
	deadline := time.Now().Add(15 * time.Second)
	for len(e.app.requests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	got := e.app.requests()
	if len(got) < 2 {
		t.Fatalf("the retries did not come through the other route: %d requests", len(got))
	}
	for _, r := range got {
		if v := r.header.Get(verifiedHeader); v != "" {
			t.Fatalf("a retry through another route reached the app with %s: %q", verifiedHeader, v)
		}
	}
	before := len(got)
	e.tester.InitServer(e.config, "caddyfile")
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		verified := 0
		for _, r := range e.app.requests()[before:] {
			if r.header.Get(verifiedHeader) == "true" {
				verified++
			}
		}
		if verified > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	verified := 0
	for _, r := range e.app.requests()[before:] {
		if r.header.Get(verifiedHeader) == "true" {
			verified++
		}
	}
	if verified != 1 {
		t.Fatalf("after the handler is back, %d verified deliveries, want 1", verified)
	}
}
