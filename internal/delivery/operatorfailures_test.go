package delivery

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A storage failure during a redelivery loses nothing: before the pending
// record is written the event stays dead; if only the dead record cannot
// be deleted the event is pending (and delivered once), and the leftover
// dead record goes, whether the queue or a second redelivery comes first.
func TestRedeliverStorageFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   func(op, key string) error
		pending bool // written despite the fault
		finish  string
	}{
		{"lock", failOn(".e1", "lock"), false, "redeliver"},
		{"list dead groups", failOn("/dead", "list"), false, "redeliver"},
		{"read the dead record", failOn("/dead/", "load"), false, "redeliver"},
		{"write the pending record", failOn("/pending/e1", "store"), false, "redeliver"},
		{"delete the dead record, then the queue", failOn("/dead/", "delete"), true, "queue"},
		{"delete the dead record, then a second redelivery", failOn("/dead/", "delete"), true, "redeliver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
			h.kill("e1", "e2")
			body := string(h.record(deadKey("e1"), "e1").Body)
			h.app.answer = nil
			h.st.setFault(tc.fault)
			ev, err := h.q.Redeliver(ctx, "e1")
			h.st.setFault(nil)
			if err == nil {
				t.Fatal("no error")
			}
			if h.st.locked(h.q.lockName("e1")) {
				t.Fatal("the event's lock is still held")
			}
			if got := h.st.has(pendingE1); got != tc.pending {
				t.Fatalf("pending record written: %v, want %v", got, tc.pending)
			}
			if !h.st.has(deadKey("e1")) {
				t.Fatal("the dead record is gone")
			}
			if tc.pending {
				if !errors.Is(err, ErrDeadKept) || ev == nil || ev.State != Received {
					t.Fatalf("Redeliver = %+v, %v; want the pending record and ErrDeadKept", ev, err)
				}
				if rec := h.record(pendingE1, "e1"); string(rec.Body) != body {
					t.Fatal("the pending record lost the body")
				}
			} else if ev != nil {
				t.Fatalf("Redeliver returned %+v with %v", ev, err)
			}
			if h.outs.get(OutcomeStorageError) == 0 {
				t.Fatal("storage_error not observed")
			}
			if tc.finish == "redeliver" {
				if _, err := h.q.Redeliver(ctx, "e1"); err != nil {
					t.Fatalf("second redelivery: %v", err)
				}
			}
			h.drive(3, time.Second)
			if h.app.okCount("e1") != 1 || h.app.okCount("e2") != 0 {
				t.Fatalf("delivered e1 %d times, e2 %d times", h.app.okCount("e1"), h.app.okCount("e2"))
			}
			h.drive(60, time.Second)
			dead, err := h.q.List(ctx, Dead)
			if err != nil || len(dead) != 1 || dead[0].ID != "e2" || h.q.Dead() != 1 {
				t.Fatalf("dead afterwards: %v, %v (Dead() = %d)", dead, err, h.q.Dead())
			}
			if h.app.count("e1") != h.app.okCount("e1")+countFailed(h, "e1") {
				t.Fatal("unexpected attempts")
			}
			if ev, err := h.q.Find(ctx, "e1"); err != nil || ev.State != Delivered {
				t.Fatalf("e1 = %+v, %v", ev, err)
			}
		})
	}
}

// countFailed is how many attempts at id failed: all of them before the
// app recovered in kill.
func countFailed(h *harness, id string) int {
	h.app.mu.Lock()
	defer h.app.mu.Unlock()
	return h.app.sends[id] - h.app.ok[id]
}

// Redelivering everything with one event's write failing redelivers the
// others and keeps that one dead.
func TestRedeliverDeadPartialFailure(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
	h.kill("d1", "d2", "d3")
	h.st.setFault(failOn("/pending/d2", "store"))
	evs, err := h.q.RedeliverDead(ctx)
	h.st.setFault(nil)
	if err == nil || !strings.Contains(err.Error(), "d2") || len(evs) != 2 {
		t.Fatalf("RedeliverDead = %d events, %v", len(evs), err)
	}
	dead, _ := h.q.List(ctx, Dead)
	if len(dead) != 1 || dead[0].ID != "d2" || h.q.Dead() != 1 {
		t.Fatalf("dead: %v (Dead() = %d)", dead, h.q.Dead())
	}
}

// A move to dead/ whose pending record could not be deleted leaves both:
// the event is dead. Redeliver and Drop both act on it; a dropped event
// is not taken up again by the queue.
func TestOperatorActionsOnAnUnfinishedMoveToDead(t *testing.T) {
	for _, action := range []string{"redeliver", "drop"} {
		t.Run(action, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
			h.st.setFault(failOn("/pending/e1", "delete"))
			h.kill("e1")
			h.st.setFault(nil)
			if !h.st.has(pendingE1) || !h.st.has(deadKey("e1")) {
				t.Fatalf("records: %v", h.st.keys(testPrefix))
			}
			h.app.answer = nil
			before := h.app.count("e1")
			var err error
			if action == "redeliver" {
				_, err = h.q.Redeliver(ctx, "e1")
			} else {
				_, err = h.q.Drop(ctx, "e1")
			}
			if err != nil {
				t.Fatal(err)
			}
			h.drive(60, time.Second)
			want := map[string]int{"redeliver": 1, "drop": 0}[action]
			if h.app.count("e1")-before != want || h.app.okCount("e1") != want {
				t.Fatalf("sent %d more times, want %d", h.app.count("e1")-before, want)
			}
			if h.st.has(deadKey("e1")) || h.st.has(pendingE1) || h.outs.get(OutcomeLost) != 0 {
				t.Fatalf("records left: %v, lost %d", h.st.keys(testPrefix), h.outs.get(OutcomeLost))
			}
		})
	}
}
