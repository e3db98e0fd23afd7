package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// down is an app answer: unreachable.
func down(*Event, int) (int, []byte, error) { return 0, nil, errors.New("connection refused") }

// kill makes the events ids dead: recorded, never taken by the app within
// RetryFor (10 minutes), then given up at the next attempt after it (within
// 20 minutes). The app is left down.
func (h *harness) kill(ids ...string) {
	h.t.Helper()
	h.app.answer = down
	for _, id := range ids {
		h.claim(h.event(id), 0)
	}
	h.drive(20*60, time.Second)
	dead, err := h.q.List(context.Background(), Dead)
	if err != nil || len(dead) != len(ids) {
		h.t.Fatalf("dead after retry_for: %d events, %v", len(dead), err)
	}
}

// deadKey is where a killed event's dead record is: its Expires (2 h after
// it was claimed) is later than the moment it was given up.
func deadKey(id string) string {
	return fmt.Sprintf("%s/dead/%d/%s", testPrefix, hourCeil(t0.Add(2*time.Hour)), id)
}

const pendingE1 = testPrefix + "/pending/e1"

// withStorage runs f on Caddy's storages: the package's memory storage,
// and the file system. On the file system the queue is rebuilt on a
// certmagic.FileStorage, with the harness's app, clock and logs.
func withStorage(t *testing.T, f func(t *testing.T, h *harness, st certmagic.Storage)) {
	for _, name := range []string{"memory", "file_system"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
			var st certmagic.Storage = h.st
			if name == "file_system" {
				st = &certmagic.FileStorage{Path: t.TempDir()}
				q, err := New(Config{Storage: st, Prefix: testPrefix, Instance: "inst-a", Now: h.clk.Now,
					Send: h.app.Send, Logger: h.q.logger, Observe: h.outs.observe, RetryFor: 10 * time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				q.rand = func() float64 { return 0.5 }
				h.q = q
			}
			f(t, h, st)
		})
	}
}

// A dead event is listed with what an operator needs; redelivered once the
// app is back, it reaches the app once more, with its id (the
// Idempotency-Key), and is gone from the dead events.
func TestRedeliverDeadEvent(t *testing.T) {
	withStorage(t, func(t *testing.T, h *harness, st certmagic.Storage) {
		ctx := context.Background()
		h.kill("e1")
		dead, _ := h.q.List(ctx, Dead)
		d := dead[0]
		if d.ID != "e1" || d.Object != "uploads/e1" || d.Attempts < 3 || d.LastError != "connection refused" || !d.Created.Equal(t0) {
			t.Fatalf("dead event = %+v", d)
		}
		if h.q.Dead() != 1 {
			t.Fatalf("Dead() = %d after a scan, want 1", h.q.Dead())
		}
		tries := h.app.count("e1")

		h.app.answer = nil // the app recovers
		h.clk.Advance(time.Hour)
		ev, err := h.q.Redeliver(ctx, "e1")
		if err != nil {
			t.Fatal(err)
		}
		now := h.clk.Now()
		if ev.State != Received || !ev.NextAt.Equal(now) || !ev.Redelivered.Equal(now) || ev.Attempts != d.Attempts ||
			!ev.Created.Equal(t0) || ev.Owner != "" || !ev.Lease.IsZero() {
			t.Fatalf("redelivered record = %+v", ev)
		}
		if h.q.Owed() != 1 {
			t.Fatal("the running queue does not owe the redelivered event")
		}
		if got, _ := h.q.List(ctx, Dead); len(got) != 0 {
			t.Fatalf("still dead: %v", got)
		}
		h.drive(1, 0) // due at once: the first step attempts it
		if h.app.count("e1") != tries+1 || h.app.okCount("e1") != 1 {
			t.Fatalf("after redelivery the app got %d attempts (%d taken), want %d (1)", h.app.count("e1"), h.app.okCount("e1"), tries+1)
		}
		h.drive(120, time.Second)
		if h.app.count("e1") != tries+1 {
			t.Fatal("delivered more than once")
		}
		got, err := h.q.Find(ctx, "e1")
		if err != nil || got.State != Delivered || got.Attempts != d.Attempts+1 {
			t.Fatalf("Find after delivery = %+v, %v", got, err)
		}
		if h.q.Dead() != 0 || h.q.Owed() != 0 {
			t.Fatalf("dead %d, owed %d", h.q.Dead(), h.q.Owed())
		}
		if p, _ := h.q.List(ctx, Received); len(p) != 0 {
			t.Fatalf("still pending: %v", p)
		}
	})
}

// A redelivered event gets RetryFor anew from its redelivery: it is not
// given up at its first failed attempt, and is given up again, with its
// attempts counted on, at the first failed attempt after RetryFor has
// passed again.
func TestRedeliverFreshRetryWindow(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
	h.kill("e1")
	h.clk.Advance(24 * time.Hour)
	before := h.app.count("e1")
	if _, err := h.q.Redeliver(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	at := h.clk.Now()
	// The app is still down. The attempt made at once fails and the event
	// waits for its backoff (which goes on from its attempts so far, capped
	// at 10 minutes) within the new window.
	h.drive(9*60, time.Second)
	if h.app.count("e1") != before+1 {
		t.Fatalf("%d attempts after the redelivery, want 1", h.app.count("e1")-before)
	}
	if dead, _ := h.q.List(ctx, Dead); len(dead) != 0 {
		t.Fatalf("dead again %v after the redelivery, before retry_for passed", h.clk.Now().Sub(at))
	}
	h.drive(6*60, time.Second)
	dead, err := h.q.List(ctx, Dead)
	if err != nil || len(dead) != 1 || dead[0].Attempts != h.app.count("e1") || !dead[0].Redelivered.Equal(at) {
		t.Fatalf("not dead again after retry_for: %v, %v", dead, err)
	}
	// And it can be redelivered again.
	h.app.answer = nil
	if _, err := h.q.Redeliver(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	h.drive(2, time.Second)
	if h.app.okCount("e1") != 1 {
		t.Fatalf("delivered %d times", h.app.okCount("e1"))
	}
}

// Redeliver everything dead: each event once, the others untouched.
func TestRedeliverDead(t *testing.T) {
	withStorage(t, func(t *testing.T, h *harness, st certmagic.Storage) {
		ctx := context.Background()
		h.kill("d1", "d2", "d3")
		h.app.answer = nil
		h.claim(h.event("p1"), time.Hour) // pending, its first attempt under way
		evs, err := h.q.RedeliverDead(ctx)
		if err != nil || len(evs) != 3 {
			t.Fatalf("RedeliverDead = %d events, %v", len(evs), err)
		}
		if h.q.Dead() != 0 {
			t.Fatalf("Dead() = %d", h.q.Dead())
		}
		h.drive(5, time.Second)
		for _, id := range []string{"d1", "d2", "d3"} {
			if h.app.okCount(id) != 1 {
				t.Errorf("%s delivered %d times", id, h.app.okCount(id))
			}
		}
		if h.app.count("p1") != 0 {
			t.Error("a pending event whose first attempt is under way was sent")
		}
		if evs, err := h.q.RedeliverDead(ctx); err != nil || len(evs) != 0 {
			t.Fatalf("nothing dead: %v, %v", evs, err)
		}
	})
}

// Drop deletes a dead event for good; it is no longer listed or found.
func TestDropDeadEvent(t *testing.T) {
	withStorage(t, func(t *testing.T, h *harness, st certmagic.Storage) {
		ctx := context.Background()
		h.kill("e1", "e2")
		ev, err := h.q.Drop(ctx, "e1")
		if err != nil || ev.ID != "e1" || ev.State != Dead {
			t.Fatalf("Drop = %+v, %v", ev, err)
		}
		dead, _ := h.q.List(ctx, Dead)
		if len(dead) != 1 || dead[0].ID != "e2" {
			t.Fatalf("dead after the drop: %v", dead)
		}
		if _, err := h.q.Find(ctx, "e1"); !errors.Is(err, ErrNoEvent) {
			t.Fatalf("Find of a dropped event: %v", err)
		}
		if _, err := h.q.Drop(ctx, "e1"); !errors.Is(err, ErrNoEvent) {
			t.Fatalf("second drop: %v", err)
		}
		if h.q.Dead() != 1 {
			t.Fatalf("Dead() = %d", h.q.Dead())
		}
		h.app.answer = nil
		h.drive(60, time.Second)
		if h.app.okCount("e1")+h.app.okCount("e2") != 0 {
			t.Fatal("a dead or dropped event was delivered")
		}
	})
}

// Actions on dead events leave events in any other state, unknown ids and
// ids that cannot name an event alone, with a clear error; Find shows
// any state.
func TestOperatorActionsByState(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
	h.kill("dead")
	h.app.answer = nil
	h.claim(h.event("pending"), time.Hour)
	for id, status := range map[string]int{"delivered": 200, "refused": 409} {
		ev := h.event(id)
		h.claim(ev, time.Hour)
		if _, err := h.q.Settle(ctx, ev, status, []byte("answer"), nil); err != nil {
			t.Fatal(err)
		}
	}
	keys := h.st.keys(testPrefix)
	for _, tc := range []struct {
		id        string
		state     State // Find's answer; "" for none
		actionErr error // Redeliver's and Drop's
	}{
		{"pending", Received, ErrNotDead},
		{"delivered", Delivered, ErrNotDead},
		{"refused", Refused, ErrNotDead},
		{"unknown", "", ErrNoEvent},
		{"", "", ErrNoEvent},
		{"../dead", "", ErrNoEvent},
		{"dead/x", "", ErrNoEvent},
		{"dead%00", "", ErrNoEvent},
		{"dé", "", ErrNoEvent},
		{strings.Repeat("a", 129), "", ErrNoEvent},
	} {
		t.Run(fmt.Sprintf("%.20q", tc.id), func(t *testing.T) {
			ev, err := h.q.Find(ctx, tc.id)
			if tc.state == "" && !errors.Is(err, ErrNoEvent) || tc.state != "" && (err != nil || ev.State != tc.state) {
				t.Errorf("Find = %+v, %v; want state %q", ev, err, tc.state)
			}
			for name, action := range map[string]func(context.Context, string) (*Event, error){
				"Redeliver": h.q.Redeliver, "Drop": h.q.Drop,
			} {
				ev, err := action(ctx, tc.id)
				if !errors.Is(err, tc.actionErr) || ev != nil {
					t.Errorf("%s = %+v, %v; want %v", name, ev, err, tc.actionErr)
				}
				var se *StateError
				if tc.actionErr == ErrNotDead && (!errors.As(err, &se) || se.State != tc.state) {
					t.Errorf("%s: %v does not name the state %s", name, err, tc.state)
				}
			}
		})
	}
	if got := h.st.keys(testPrefix); strings.Join(got, " ") != strings.Join(keys, " ") {
		t.Fatalf("refused actions changed the records:\n%v\n%v", keys, got)
	}
	if ev, err := h.q.Find(ctx, "dead"); err != nil || ev.State != Dead {
		t.Fatalf("Find(dead) = %+v, %v", ev, err)
	}
}

// Each action takes the event's storage lock and frees it; while another
// holder has it, the action waits and, when its ctx ends, changes nothing.
func TestOperatorActionsTakeTheEventLock(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
	h.kill("e1")
	lock := h.q.lockName("e1")
	for name, action := range map[string]func(context.Context, string) (*Event, error){
		"Redeliver": h.q.Redeliver, "Drop": h.q.Drop,
	} {
		t.Run(name, func(t *testing.T) {
			if err := h.st.Lock(context.Background(), lock); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = h.st.Unlock(context.Background(), lock) }()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err := action(ctx, "e1")
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("with the lock held elsewhere: %v", err)
			}
			if !h.st.has(deadKey("e1")) || h.st.has(pendingE1) {
				t.Fatal("changed without the lock")
			}
		})
	}
	h.st.resetOps()
	if _, err := h.q.Redeliver(context.Background(), "e1"); err != nil {
		t.Fatal(err)
	}
	if h.st.count("lock", "e1") != 1 || h.st.count("unlock", "e1") != 1 || h.st.locked(lock) {
		t.Fatalf("lock %d, unlock %d, still held %v", h.st.count("lock", "e1"), h.st.count("unlock", "e1"), h.st.locked(lock))
	}
}

// A redelivery made on another instance (a Queue opened for an operator,
// which sends nothing) is picked up by the running queue at its next scan
// and delivered once.
func TestRedeliverFromAnOperatorQueue(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	h := newHarness(t, st, clk, "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
	h.kill("e1")
	op, err := Open(Config{Storage: st, Prefix: testPrefix, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { op.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run of an operator's queue did not return")
	}
	if n, err := op.CountDead(ctx); n != 1 || err != nil || op.Dead() != 1 {
		t.Fatalf("CountDead = %d, %v", n, err)
	}
	if n, err := op.CountPending(ctx); n != 0 || err != nil {
		t.Fatalf("CountPending = %d, %v", n, err)
	}
	h.app.answer = nil
	if _, err := op.Redeliver(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if op.Owed() != 0 {
		t.Fatal("an operator's queue owes events")
	}
	if n, err := op.CountPending(ctx); n != 1 || err != nil {
		t.Fatalf("CountPending after the redelivery = %d, %v", n, err)
	}
	h.drive(9, time.Second)
	h.drive(3, time.Second) // the next scan (every 10 s) finds it
	if h.app.okCount("e1") != 1 {
		t.Fatalf("delivered %d times", h.app.okCount("e1"))
	}
	h.drive(30, time.Second)
	if h.app.okCount("e1") != 1 || h.q.Dead() != 0 {
		t.Fatalf("delivered %d times, dead %d", h.app.okCount("e1"), h.q.Dead())
	}
}

// Each scan counts the dead records, those other instances gave up
// included.
func TestScanCountsDead(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a")
	h.drive(1, 0)
	if h.q.Dead() != 0 {
		t.Fatalf("Dead() = %d", h.q.Dead())
	}
	for i, g := range []int64{hourCeil(t0), hourCeil(t0) + 3600, hourCeil(t0) + 3600} {
		key := fmt.Sprintf("%s/dead/%d/x%d", testPrefix, g, i)
		if err := h.st.Store(context.Background(), key, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	h.drive(11, time.Second)
	if h.q.Dead() != 3 {
		t.Fatalf("Dead() = %d after a scan, want 3", h.q.Dead())
	}
	h.st.setFault(failOn("/dead", "list"))
	h.drive(11, time.Second)
	if h.q.Dead() != 3 || len(h.errorLogs("counting the dead events failed")) == 0 {
		t.Fatalf("a failed count: Dead() = %d, logs %v", h.q.Dead(), messages(h.logs))
	}
}
