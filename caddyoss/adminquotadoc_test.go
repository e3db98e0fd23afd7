package caddyoss

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// The "Quotas" commands of docs/operations.md, run as written against a
// Caddy where alice made two uploads and holds one signature: the listing
// shows the handler's quota, the usage counts her uploads and reservation,
// and the reset forgives the uploads and keeps the reservation, so that a
// signing refused before fits again.
func TestQuotaDocCommands(t *testing.T) {
	cmds := operationsCommands(t, "Quotas")
	steps := []string{
		`^curl -s localhost:2019/oss_upload/$`,
		`^curl -s -G localhost:2019/oss_upload/quota/\$HANDLER --data-urlencode key=alice$`,
		`^curl -s -X POST -G localhost:2019/oss_upload/quota/\$HANDLER/reset --data-urlencode key=alice$`,
	}
	if len(cmds) != len(steps) {
		t.Fatalf("the section has %d commands, this test runs %d: %v", len(cmds), len(steps), cmds)
	}
	for i, c := range cmds {
		if !regexp.MustCompile(steps[i]).MatchString(c.cmd) {
			t.Fatalf("operations.md:%d: command %d is %q; this test expects one matching %s", c.line, i+1, c.cmd, steps[i])
		}
	}

	e := newConfirmEnv(t, confirmOpts{extra: `
		quota {
			key {http.request.header.X-User}
			bytes 2GiB per 24h
			uploads 3 per 24h
			pending 20
		}`})
	e.uploadAt(t, "localhost:9080", "alice")
	e.uploadAt(t, "localhost:9080", "alice")
	if status, p := e.signAt(t, "localhost:9080", "alice"); status != 200 {
		t.Fatalf("signing: %d %v", status, p)
	}
	if status, _ := e.signAt(t, "localhost:9080", "alice"); status != 429 {
		t.Fatalf("a fourth upload: %d, want 429", status)
	}
	decode := func(out string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		return m
	}

	// The listing: our handler and its quota.
	out := cmds[0].run(t, "", "")
	cmds[0].checkExample(t, out)
	want := `{"handlers":[{"id":"` + e.handlerID + `","served":true,"pending":0,"dead":0,` +
		`"quota":{"bytes":2147483648,"uploads":3,"pending":20,"window":"24h0m0s"}}]}`
	if strings.TrimSpace(out) != want {
		t.Fatalf("listing %s\nwant %s", out, want)
	}

	// Alice's usage: two uploads and a reservation.
	out = cmds[1].run(t, e.handlerID, "")
	cmds[1].checkExample(t, out)
	wantUsage("key=alice uploads=3 bytes=300 pending=1 pending_bytes=100 remaining.uploads=0 remaining.bytes=2147483348 "+
		"remaining.pending=19 limits.uploads=3 window=24h0m0s")(t, decode(out), nil)

	// Reset: the uploads forgiven, the reservation kept.
	out = cmds[2].run(t, e.handlerID, "")
	cmds[2].checkExample(t, out)
	wantUsage("key=alice reset=true uploads=1 bytes=100 pending=1 pending_bytes=100 remaining.uploads=2")(t, decode(out), nil)
	if status, p := e.signAt(t, "localhost:9080", "alice"); status != 200 {
		t.Fatalf("signing after the reset: %d %v", status, p)
	}
}
