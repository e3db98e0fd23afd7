package caddyoss

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// adminRequest asks the test's admin endpoint; origin, if set, is sent as
// Origin.
func adminRequest(t *testing.T, method, path, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://localhost:2999"+path, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// deadEvents lists the handler's dead event ids at the admin endpoint.
func deadEvents(t *testing.T, handler, origin string) []string {
	t.Helper()
	status, body := adminRequest(t, "GET", "/oss_upload/"+handler+"/events?state=dead", origin)
	if status != 200 {
		t.Fatalf("listing dead events: %d %s", status, body)
	}
	var out struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range out.Events {
		ids = append(ids, e.ID)
	}
	return ids
}

// killUploads uploads n files while the app answers 503 and waits until
// the callbacks are dead (retry_for is 2 s). It returns the handler's id
// and the events' ids.
func killUploads(t *testing.T, e *deliveryEnv, n int) (string, []string) {
	t.Helper()
	e.app.setMode("5xx")
	var keys []string
	for i := range n {
		status, body := e.upload(t, fmt.Sprintf("dead letter %d", i))
		var answer struct {
			Status string `json:"status"`
			Key    string `json:"idempotency_key"`
		}
		_ = json.Unmarshal([]byte(body), &answer)
		if status != 200 || answer.Status != "queued" {
			t.Fatalf("upload %d: %d %s", i, status, body)
		}
		keys = append(keys, answer.Key)
	}
	ids := servedHandlerIDs()
	if len(ids) != 1 {
		t.Fatalf("handlers served: %v", ids)
	}
	for deadline := time.Now().Add(30 * time.Second); len(deadEvents(t, ids[0], "")) < n; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not dead within 30 s: %v", deadEvents(t, ids[0], ""))
		}
	}
	return ids[0], keys
}

// sentWith counts the app's requests from index from on whose
// Idempotency-Key is key, and how many it took (2xx, app up).
func sentWith(e *deliveryEnv, from int, key string) int {
	n := 0
	for _, r := range e.app.requests()[from:] {
		if r.header.Get("Idempotency-Key") == key {
			n++
		}
	}
	return n
}
