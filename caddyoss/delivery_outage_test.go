package caddyoss

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The upstream is down while 20 uploads complete: every uploader gets 200,
// and when it comes back it receives each upload exactly once.
func TestDeliveryOutage(t *testing.T) {
	e := newDeliveryEnv(t, "")
	e.app.setMode("down")
	for i := range 20 {
		status, body := e.upload(t, fmt.Sprintf("upload %d", i))
		if status != 200 || !strings.Contains(body, `"status":"queued"`) {
			t.Fatalf("upload %d: %d %s", i, status, body)
		}
	}
	if len(e.app.requests()) != 0 {
		t.Fatal("a down app received requests")
	}
	e.app.setMode("up")
	keys := e.waitDelivered(t, 20, 30*time.Second)
	if len(keys) != 20 {
		t.Fatalf("%d of 20 uploads delivered", len(keys))
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	for k, n := range e.waitDelivered(t, 20, 0) {
		if n != 1 {
			t.Errorf("upload %s delivered %d times", k, n)
		}
	}
}

// A callback the upstream never takes within retry_for is kept as dead:
// out of the queue, in storage for inspection, counted as failed.
func TestDeliveryGivesUp(t *testing.T) {
	e := newDeliveryEnv(t, "retry_for 2s")
	dir := e.config[strings.Index(e.config, "storage file_system ")+len("storage file_system "):]
	dir = dir[:strings.IndexByte(dir, '\n')]
	before := counterValue(t, "caddy_oss_callback_deliveries_total", deliveryDead)
	e.app.setMode("5xx")
	status, body := e.upload(t, "never taken")
	if status != 200 || !strings.Contains(body, `"status":"queued"`) {
		t.Fatalf("%d %s", status, body)
	}
	var answer struct {
		Key string `json:"idempotency_key"`
	}
	_ = json.Unmarshal([]byte(body), &answer)
	dead := filepath.Join(dir, "oss_upload", "events", "*", "dead", "*", answer.Key)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m, _ := filepath.Glob(dead); len(m) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not kept", dead)
		}
		time.Sleep(200 * time.Millisecond)
	}
	queued, _ := filepath.Glob(filepath.Join(dir, "oss_upload", "events", "*", "pending", answer.Key))
	if len(queued) != 0 {
		t.Errorf("still queued: %v", queued)
	}
	if n := len(e.app.requests()); n < 2 {
		t.Errorf("only %d attempts before giving up", n)
	}
	if after := counterValue(t, "caddy_oss_callback_deliveries_total", deliveryDead); after != before+1 {
		t.Errorf("dead deliveries %v → %v", before, after)
	}
}
