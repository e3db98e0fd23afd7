package caddyoss

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docCommand is a curl command of the "Dead letters" section of
// docs/operations.md, with the example output written after it.
type docCommand struct {
	line    int
	cmd     string
	lang    string // of the example: json or text; "" when none
	example string
}

// deadLetterCommands reads the "Dead letters" section's commands.
func deadLetterCommands(t *testing.T) []docCommand {
	t.Helper()
	return operationsCommands(t, "Dead letters")
}

// operationsCommands reads the commands of a section of
// docs/operations.md: each ```sh block holds one curl command, and a
// ```json or ```text block right after it is its example output.
func operationsCommands(t *testing.T, section string) []docCommand {
	t.Helper()
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start := slices.Index(lines, "## "+section)
	if start < 0 {
		t.Fatalf("docs/operations.md has no %q section", "## "+section)
	}
	var cmds []docCommand
	for i := start + 1; i < len(lines) && !strings.HasPrefix(lines[i], "## "); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok || lang == "" {
			continue
		}
		open := i
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		switch {
		case lang == "sh":
			if len(body) != 1 || !strings.HasPrefix(body[0], "curl ") {
				t.Fatalf("operations.md:%d: a sh block of the section is one curl command: %q", open+1, body)
			}
			cmds = append(cmds, docCommand{line: open + 1, cmd: body[0]})
		case (lang == "json" || lang == "text") && len(cmds) > 0 && cmds[len(cmds)-1].lang == "":
			cmds[len(cmds)-1].lang, cmds[len(cmds)-1].example = lang, strings.Join(body, "\n")
		}
	}
	return cmds
}

// run runs a documented command as written, against the test's admin
// endpoint (localhost:2999 for the documented localhost:2019), with
// HANDLER and EVENT in its environment.
func (c docCommand) run(t *testing.T, handler, event string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the documented commands need curl: %v", err)
	}
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(c.cmd, "localhost:2019", "localhost:2999"))
	cmd.Env = append(os.Environ(), "HANDLER="+handler, "EVENT="+event)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("operations.md:%d: %s: %v (%s)", c.line, c.cmd, err, out)
	}
	return string(out)
}

var hexID = regexp.MustCompile(`[0-9a-f]{32,64}`)

// checkExample compares an answer with the documented example: JSON of
// the same shape (the same keys, and in arrays of objects the same keys
// in each object), or the same text with ids written as <id>.
func (c docCommand) checkExample(t *testing.T, out string) {
	t.Helper()
	switch c.lang {
	case "text":
		if got, want := hexID.ReplaceAllString(strings.TrimSpace(out), "<id>"), hexID.ReplaceAllString(c.example, "<id>"); got != want {
			t.Errorf("operations.md:%d: %s answered\n%s\nthe example says\n%s", c.line, c.cmd, got, want)
		}
	case "json":
		var got, want any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("operations.md:%d: %s answered %q: %v", c.line, c.cmd, out, err)
		}
		if err := json.Unmarshal([]byte(c.example), &want); err != nil {
			t.Fatalf("operations.md:%d: the example of %s is not JSON: %v", c.line, c.cmd, err)
		}
		if g, w := jsonShape(got, 2), jsonShape(want, 2); g != w {
			t.Errorf("operations.md:%d: %s answered %s\nwhose shape %s is not the example's %s", c.line, c.cmd, out, g, w)
		}
	default:
		t.Errorf("operations.md:%d: %s has no example output", c.line, c.cmd)
	}
}

// jsonShape describes v's keys to depth objects deep.
func jsonShape(v any, depth int) string {
	switch v := v.(type) {
	case map[string]any:
		if depth == 0 {
			return "{…}"
		}
		var parts []string
		for k, e := range v {
			parts = append(parts, k+":"+jsonShape(e, depth-1))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		shapes := map[string]bool{}
		for _, e := range v {
			shapes[jsonShape(e, depth)] = true
		}
		return "[" + strings.Join(slices.Sorted(func(yield func(string) bool) {
			for s := range shapes {
				if !yield(s) {
					return
				}
			}
		}), "|") + "]"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

// The "Dead letters" commands of docs/operations.md, run as written
// against a Caddy with three dead events: each answers as its example
// shows, a redelivered event reaches the recovered app once with its
// Idempotency-Key and leaves the dead list, a dropped one is gone and
// never sent, and redelivering all sends the last one once.
func TestDeadLettersDocCommands(t *testing.T) {
	cmds := deadLetterCommands(t)
	steps := []string{
		`^curl -s localhost:2019/oss_upload/$`,
		`^curl -s localhost:2019/metrics \| grep caddy_oss_callback_queue_dead$`,
		`^curl -s "localhost:2019/oss_upload/\$HANDLER/events\?state=dead"$`,
		`^curl -s localhost:2019/oss_upload/\$HANDLER/events/\$EVENT$`,
		`^curl -s -X POST localhost:2019/oss_upload/\$HANDLER/events/\$EVENT/redeliver$`,
		`^curl -s -X DELETE localhost:2019/oss_upload/\$HANDLER/events/\$EVENT$`,
		`^curl -s -X POST localhost:2019/oss_upload/\$HANDLER/dead/redeliver$`,
	}
	if len(cmds) != len(steps) {
		t.Fatalf("the section has %d commands, this test runs %d: %v", len(cmds), len(steps), cmds)
	}
	for i, c := range cmds {
		if !regexp.MustCompile(steps[i]).MatchString(c.cmd) {
			t.Fatalf("operations.md:%d: command %d is %q; this test expects one matching %s", c.line, i+1, c.cmd, steps[i])
		}
	}

	e := newDeliveryEnv(t, "retry_for 2s")
	handler, keys := killUploads(t, e, 3)
	e.app.setMode("up")
	recovered := len(e.app.requests())
	var h, ev string // $HANDLER and $EVENT, as an operator would find them

	// The handlers, and the id of ours.
	out := cmds[0].run(t, h, ev)
	cmds[0].checkExample(t, out)
	var index struct {
		Handlers []handlerSummary `json:"handlers"`
	}
	_ = json.Unmarshal([]byte(out), &index)
	if len(index.Handlers) != 1 || index.Handlers[0].ID != handler || index.Handlers[0].Dead != 3 || !index.Handlers[0].Served {
		t.Fatalf("handlers %s", out)
	}
	h = index.Handlers[0].ID

	// The gauge.
	out = cmds[1].run(t, h, ev)
	cmds[1].checkExample(t, out)
	if !strings.Contains(out, `caddy_oss_callback_queue_dead{handler="`+h+`"} 3`) {
		t.Fatalf("metrics: %s", out)
	}

	// The dead events, oldest first: the uploads' keys.
	out = cmds[2].run(t, h, ev)
	cmds[2].checkExample(t, out)
	var list struct {
		Events []adminEvent `json:"events"`
	}
	_ = json.Unmarshal([]byte(out), &list)
	if len(list.Events) != 3 {
		t.Fatalf("dead events %s", out)
	}
	for i, d := range list.Events {
		if d.ID != keys[i] || d.State != "dead" || d.Status != 503 || d.Attempts < 2 || d.Object == "" {
			t.Errorf("dead event %d: %+v (uploads %v)", i, d, keys)
		}
	}

	// One of them.
	ev = keys[0]
	out = cmds[3].run(t, h, ev)
	cmds[3].checkExample(t, out)
	var shown adminEvent
	_ = json.Unmarshal([]byte(out), &shown)
	if shown.ID != ev || shown.State != "dead" || shown.Body == nil || !strings.Contains(*shown.Body, "object=") {
		t.Fatalf("event %s", out)
	}

	// Redelivered: the app, up again, gets it once, with its key; it is no
	// longer dead.
	before := len(e.app.requests())
	out = cmds[4].run(t, h, ev)
	cmds[4].checkExample(t, out)
	var redelivered adminEvent
	_ = json.Unmarshal([]byte(out), &redelivered)
	if redelivered.ID != ev || redelivered.State != "pending" || redelivered.Redelivered == nil {
		t.Fatalf("redelivered %s", out)
	}
	for deadline := time.Now().Add(15 * time.Second); sentWith(e, before, ev) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the redelivered event did not reach the app")
		}
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	if n := sentWith(e, before, ev); n != 1 || len(e.app.requests())-before != 1 {
		t.Fatalf("after the redelivery the app got %d requests, %d with the event's key", len(e.app.requests())-before, n)
	}
	if got := deadEvents(t, h, ""); !slices.Equal(got, keys[1:]) {
		t.Fatalf("dead after the redelivery: %v", got)
	}
	if status, body := adminRequest(t, "GET", "/oss_upload/"+h+"/events/"+ev, ""); status != 200 || !strings.Contains(body, `"state":"delivered"`) {
		t.Fatalf("the redelivered event: %d %s", status, body)
	}

	// Dropped: gone, and never sent.
	ev = keys[1]
	out = cmds[5].run(t, h, ev)
	cmds[5].checkExample(t, out)
	if !strings.Contains(out, `"dropped":true`) {
		t.Fatalf("drop %s", out)
	}
	if status, _ := adminRequest(t, "GET", "/oss_upload/"+h+"/events/"+ev, ""); status != 404 {
		t.Fatalf("a dropped event is found: %d", status)
	}

	// Everything left: the last one, sent once.
	before = len(e.app.requests())
	out = cmds[6].run(t, h, ev)
	cmds[6].checkExample(t, out)
	if !strings.Contains(out, `"redelivered":1`) || !strings.Contains(out, keys[2]) {
		t.Fatalf("redeliver all %s", out)
	}
	for deadline := time.Now().Add(15 * time.Second); sentWith(e, before, keys[2]) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the last dead event did not reach the app")
		}
	}
	time.Sleep(2 * time.Second)
	if len(e.app.requests())-recovered != 2 || sentWith(e, recovered, keys[0]) != 1 || sentWith(e, recovered, keys[1]) != 0 ||
		sentWith(e, recovered, keys[2]) != 1 {
		t.Fatalf("since the app recovered it got %d requests: %d, %d and %d for the redelivered, dropped and last event",
			len(e.app.requests())-recovered, sentWith(e, recovered, keys[0]), sentWith(e, recovered, keys[1]), sentWith(e, recovered, keys[2]))
	}
	if got := deadEvents(t, h, ""); len(got) != 0 {
		t.Fatalf("still dead: %v", got)
	}
	if out := cmds[1].run(t, h, ev); !strings.Contains(out, `caddy_oss_callback_queue_dead{handler="`+h+`"} 0`) {
		t.Fatalf("metrics afterwards: %s", out)
	}
}
