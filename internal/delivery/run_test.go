package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// The queue retries with exponential backoff until the app takes the event.
func TestRunRetriesWithBackoffUntilDelivered(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a")
	h.app.answer = func(ev *Event, n int) (int, []byte, error) {
		if n < 4 {
			return 503, nil, nil
		}
		return 200, nil, nil
	}
	ev := h.event("e1")
	h.claim(ev, 0) // no inline attempt: the queue makes them all
	h.drive(40, 500*time.Millisecond)
	if n := h.app.count("e1"); n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
	at := h.app.at["e1"]
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if gap := at[i+1].Sub(at[i]); gap < want || gap > want+time.Second {
			t.Fatalf("wait before attempt %d = %v, want %v (one 500 ms step of slack)", i+2, gap, want)
		}
	}
	if rec := h.record(fmt.Sprintf("%s/done/%d/e1", testPrefix, hourCeil(ev.Expires)), "e1"); rec.State != Delivered || rec.Attempts != 4 {
		t.Fatalf("record = %+v", rec)
	}
	if h.q.Owed() != 0 || h.outs.get(OutcomeRetried) != 4 || h.outs.get(OutcomeDelivered) != 1 {
		t.Fatalf("owed %d, outcomes %v", h.q.Owed(), h.outs.n)
	}
	c, err := h.q.Claim(ctx, h.event("e1"), time.Second)
	if err != nil || c.State != Delivered {
		t.Fatalf("copy after the retries: %+v, %v", c, err)
	}
}

// A storage that always fails never makes the queue spin: each event is
// tried about once per backoff step, every failure is logged with its
// cause, and nothing is taken as delivered.
func TestRunFailingStorageBacksOff(t *testing.T) {
	cases := []struct {
		name  string
		fault func(h *harness) func(op, key string) error
		cause string
	}{
		{"lock", func(*harness) func(string, string) error { return failOn("e1", "lock") }, "locking an owed event"},
		{"read", func(*harness) func(string, string) error { return failOn("/pending/e1", "load") }, "reading an owed event"},
		{"lease write", func(*harness) func(string, string) error { return failOn("/pending/e1", "store") }, "taking the lease"},
		{"settled check", func(*harness) func(string, string) error { return failOn("/done/", "load") }, "checking an owed event"},
		{"reschedule write", func(h *harness) func(string, string) error {
			// The lease write succeeds; the write after the failed attempt does not.
			var sent atomic.Bool
			h.app.answer = func(*Event, int) (int, []byte, error) {
				sent.Store(true)
				return 502, nil, nil
			}
			h.st.onOp = func(op, key string) {
				if op == "lock" {
					sent.Store(false)
				}
			}
			return func(op, key string) error {
				if op == "store" && sent.Load() {
					return errInjected
				}
				return nil
			}
		}, "rescheduling an event failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, newMem(), newClock(), "inst-a", func(cfg *Config) { cfg.RetryFor = 24 * time.Hour })
			h.claim(h.event("e1"), 0)
			h.st.setFault(c.fault(h))
			h.st.resetOps()
			h.drive(30*60, time.Second) // 30 minutes, one step a second
			// 1+2+4+…+512 s ≈ 17 min, then 10 min steps: about 12 tries.
			tries := h.st.count("lock", "e1")
			t.Logf("%d tries in 30 minutes", tries)
			if tries < 8 || tries > 15 {
				t.Fatalf("%d tries in 30 minutes, want about one per backoff step (8..15)", tries)
			}
			h.requireCause(c.cause)
			if h.q.Owed() != 1 || !h.st.has(testPrefix+"/pending/e1") {
				t.Fatal("the event is no longer owed")
			}
			if h.app.okCount("e1") != 0 {
				t.Fatal("delivered despite the failures")
			}
			if h.outs.get(OutcomeStorageError) == 0 {
				t.Fatal("storage_error not observed")
			}
			// Once the storage recovers the event is delivered.
			h.st.setFault(nil)
			h.app.answer = nil
			h.drive(15*60, time.Second)
			if h.q.Owed() != 0 || h.app.okCount("e1") != 1 {
				t.Fatalf("after recovery: owed %d, delivered %d times", h.q.Owed(), h.app.okCount("e1"))
			}
		})
	}
}

// A pending record that vanishes while owed (a storage restarted empty) is
// reported as lost, never forgotten silently.
func TestRunReportsLostRecords(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a")
	h.app.answer = func(*Event, int) (int, []byte, error) { return 503, nil, nil }
	h.claim(h.event("e1"), 0)
	h.claim(h.event("e2"), time.Hour) // waiting far ahead: the rescan finds it gone
	h.drive(3, time.Second)
	if h.app.count("e1") == 0 {
		t.Fatal("no attempt")
	}
	h.st.wipe()
	h.drive(15, time.Second)
	if got := h.outs.get(OutcomeLost); got != 2 {
		t.Fatalf("lost observed %d times, want 2", got)
	}
	if n := len(h.errorLogs("vanished")); n != 2 {
		t.Fatalf("%d error logs for lost records, want 2: %v", n, messages(h.logs))
	}
	if h.q.Owed() != 0 {
		t.Fatal("lost events are still owed")
	}
}

// A record settled by another holder is forgotten without a "lost" report.
func TestRunForgetsEventsSettledElsewhere(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	a := newHarness(t, st, clk, "inst-a")
	b := newHarness(t, st, clk, "inst-b")
	ev := a.event("e1")
	a.claim(ev, 30*time.Second)
	b.drive(1, 0) // b indexes it, due when a's first attempt lease ends
	if b.q.Owed() != 1 {
		t.Fatal("b did not pick the event up")
	}
	if st, err := a.q.Settle(ctx, ev, 200, nil, nil); st != Delivered || err != nil {
		t.Fatalf("settle = %s, %v", st, err)
	}
	b.drive(60, time.Second)
	if b.q.Owed() != 0 || b.app.total() != 0 || b.outs.get(OutcomeLost) != 0 {
		t.Fatalf("b: owed %d, sent %d, lost %d", b.q.Owed(), b.app.total(), b.outs.get(OutcomeLost))
	}
}

// Given up after RetryFor: moved to dead, found by a copy's claim, listed.
func TestRunDeadLettersAfterRetryFor(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 10 * time.Minute })
	h.app.answer = func(*Event, int) (int, []byte, error) { return 0, nil, errors.New("connection refused") }
	ev := h.event("e1")
	h.claim(ev, 0)
	h.drive(20*60, time.Second)
	if h.q.Owed() != 0 || h.st.has(testPrefix+"/pending/e1") {
		t.Fatal("still owed after retry_for")
	}
	key := fmt.Sprintf("%s/dead/%d/e1", testPrefix, hourCeil(ev.Expires))
	if rec := h.record(key, "e1"); rec.State != Dead || rec.LastError != "connection refused" {
		t.Fatalf("dead record = %+v", rec)
	}
	if h.outs.get(OutcomeDead) != 1 || len(h.errorLogs("kept as dead")) != 1 {
		t.Fatalf("dead not reported: %v", h.outs.n)
	}
	tries := h.app.count("e1")
	c, err := h.q.Claim(ctx, h.event("e1"), time.Second)
	if err != nil || c.State != Dead {
		t.Fatalf("copy of a dead event: %+v, %v", c, err)
	}
	dead, err := h.q.List(ctx, Dead)
	if err != nil || len(dead) != 1 || dead[0].ID != "e1" {
		t.Fatalf("List(dead) = %v, %v", dead, err)
	}
	h.drive(60, time.Second)
	if h.app.count("e1") != tries {
		t.Fatal("a dead event was attempted again")
	}
}

// Dead-lettering that cannot be written keeps the event pending, logged
// with its cause, and retried later.
func TestRunDeadLetterWriteFailureKeepsEventPending(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.RetryFor = 5 * time.Minute })
	h.app.answer = func(*Event, int) (int, []byte, error) { return 500, nil, nil }
	h.claim(h.event("e1"), 0)
	h.st.setFault(failOn("/dead/", "store"))
	h.drive(30*60, time.Second)
	if !h.st.has(testPrefix+"/pending/e1") || h.q.Owed() != 1 || h.outs.get(OutcomeDead) != 0 {
		t.Fatal("the event left pending although its dead record could not be written")
	}
	h.requireCause("recording a dead event failed")
	failedTries := h.st.count("store", "/dead/")
	t.Logf("%d dead-letter tries", failedTries)
	if failedTries < 2 || failedTries > 4 {
		t.Fatalf("%d dead-letter tries in the 25 minutes past retry_for, want a few (backed off)", failedTries)
	}
	h.st.setFault(nil)
	h.drive(15*60, time.Second)
	if h.st.has(testPrefix+"/pending/e1") || h.q.Owed() != 0 || h.outs.get(OutcomeDead) != 1 {
		t.Fatal("not dead-lettered after the storage recovered")
	}
}

// An event whose lease another instance holds (in flight there, or that
// instance crashed) is left alone until the lease passes, then retried.
func TestRunRespectsOthersLeaseAndTakesOverAfterIt(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	crashed := newHarness(t, st, clk, "inst-crashed")
	b := newHarness(t, st, clk, "inst-b")
	ev := crashed.event("e1")
	if _, err := crashed.q.Claim(ctx, ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b.drive(1, 5*time.Second) // b knows the event, due when the first-attempt lease ends

	crashed.app.gate = make(chan struct{}) // never answers: the instance "crashes" mid-attempt
	crashed.app.started = make(chan string, 1)
	crashed.q.step(ctx)
	<-crashed.app.started

	b.drive(119, time.Second) // the lease is 2 minutes
	if b.app.total() != 0 {
		t.Fatal("b attempted an event leased by another instance")
	}
	b.drive(5, time.Second)
	if b.app.okCount("e1") != 1 {
		t.Fatalf("b did not take over after the lease passed (%d sends)", b.app.total())
	}
	close(crashed.app.gate)
	crashed.q.wg.Wait()
}

// A slow attempt (longer than any heartbeat interval) keeps its lease:
// another instance that knew the event before sends no copy while it is in
// flight. Each attempt's deadline is half the lease.
func TestRunSlowSendIsNotCopied(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	a := newHarness(t, st, clk, "inst-a")
	b := newHarness(t, st, clk, "inst-b")
	a.claim(a.event("e1"), 5*time.Second) // a first attempt that never settles
	b.drive(1, 5*time.Second)             // b indexes it, due at t0+5s

	a.app.gate = make(chan struct{})
	a.app.started = make(chan string, 1)
	a.q.step(ctx) // a takes it first
	<-a.app.started
	b.drive(59, time.Second) // just under the attempt's deadline (lease/2 = 60 s)
	if b.app.total() != 0 {
		t.Fatal("a second instance sent a copy while the first was in flight")
	}
	close(a.app.gate)
	a.q.wg.Wait()
	b.drive(150, time.Second)
	if b.app.total() != 0 || a.app.okCount("e1") != 1 {
		t.Fatalf("a sent %d, b sent %d", a.app.total(), b.app.total())
	}
	if d := a.app.deadline; len(d) != 1 || d[0] > DefaultLease/2 || d[0] < DefaultLease/2-5*time.Second {
		t.Fatalf("attempt deadlines %v, want half the lease", d)
	}
}

// At most Parallel attempts run at once.
func TestRunBoundsParallelAttempts(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a")
	for i := range 10 {
		h.claim(h.event(fmt.Sprintf("e%d", i)), 0)
	}
	h.app.gate = make(chan struct{})
	h.app.started = make(chan string, 10)
	h.q.step(ctx)
	for range DefaultParallel {
		<-h.app.started
	}
	h.q.step(ctx)
	time.Sleep(5 * time.Millisecond)
	if n := h.app.total(); n != DefaultParallel {
		t.Fatalf("%d attempts in flight, want %d", n, DefaultParallel)
	}
	close(h.app.gate)
	h.q.wg.Wait()
	h.drive(5, time.Second)
	if h.app.total() != 10 || h.app.maxBusy > DefaultParallel || h.q.Owed() != 0 {
		t.Fatalf("sent %d, at most %d at once, owed %d", h.app.total(), h.app.maxBusy, h.q.Owed())
	}
}
