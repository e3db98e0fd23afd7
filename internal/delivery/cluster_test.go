package delivery

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// runQueue runs h's queue in the background; the returned stop cancels it
// and done is closed when Run has returned.
func runQueue(h *harness) (stop context.CancelFunc, done chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		defer close(done)
		h.q.Run(ctx)
	}()
	return cancel, done
}

// advanceUntil moves the clock by step, giving running queues a few
// milliseconds each time, until cond holds.
func advanceUntil(t *testing.T, clk *clock, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (clock at %v)", what, clk.Now().Sub(t0))
		}
		clk.Advance(step)
		time.Sleep(2 * time.Millisecond)
	}
}

// A configuration reload: the old queue is stopped while an attempt is in
// flight and a new queue (same process, so the same instance id) starts on
// the same storage and prefix. The new queue leaves the leased event alone,
// picks up events recorded after it started, and reports nothing lost.
func TestReloadHandsOverWithoutCopies(t *testing.T) {
	st, clk := newMem(), newClock()
	old := newHarness(t, st, clk, "inst-1")
	old.app.gate = make(chan struct{})
	old.app.started = make(chan string, 1)
	old.claim(old.event("e1"), 0)
	stopOld, oldDone := runQueue(old)
	<-old.app.started
	stopOld() // the reload
	select {
	case <-oldDone:
		t.Fatal("the old queue returned with an attempt in flight")
	case <-time.After(10 * time.Millisecond):
	}

	cur := newHarness(t, st, clk, "inst-1")
	stopCur, curDone := runQueue(cur)
	defer func() { stopCur(); <-curDone }()

	// Written by another handler or instance after the new queue started.
	other := newHarness(t, st, clk, "inst-2")
	other.claim(other.event("e2"), 0)
	advanceUntil(t, clk, time.Second, "the new queue to deliver e2", func() bool { return cur.app.okCount("e2") == 1 })

	advanceUntil(t, clk, time.Second, "40 s of the old attempt", func() bool { return clk.Now().Sub(t0) > 40*time.Second })
	if cur.app.count("e1") != 0 {
		t.Fatal("the new queue attempted an event the old one holds")
	}
	close(old.app.gate)
	<-oldDone
	if old.app.okCount("e1") != 1 {
		t.Fatal("the old queue's attempt was not settled")
	}
	advanceUntil(t, clk, 5*time.Second, "the new queue to forget e1", func() bool { return cur.q.Owed() == 0 })
	if cur.app.count("e1") != 0 || cur.outs.get(OutcomeLost) != 0 {
		t.Fatalf("new queue: %d attempts at e1, %d lost", cur.app.count("e1"), cur.outs.get(OutcomeLost))
	}
}

// Two instances running on one storage deliver each event exactly once,
// retries included, and never attempt one event on both at once.
func TestTwoInstancesDeliverEachEventOnce(t *testing.T) {
	st, clk := newMem(), newClock()
	shared := newApp(clk.Now)
	shared.answer = func(ev *Event, n int) (int, []byte, error) {
		time.Sleep(time.Millisecond)
		if n == 1 {
			return 503, nil, nil
		}
		return 200, nil, nil
	}
	useShared := func(c *Config) { c.Send = shared.Send }
	a := newHarness(t, st, clk, "inst-a", useShared)
	b := newHarness(t, st, clk, "inst-b", useShared)
	const n = 30
	for i := range n {
		h := a
		if i%2 == 1 {
			h = b
		}
		h.claim(h.event(fmt.Sprintf("e%02d", i)), 0)
	}
	stopA, doneA := runQueue(a)
	stopB, doneB := runQueue(b)
	advanceUntil(t, clk, 250*time.Millisecond, "every event delivered", func() bool {
		return len(st.keys(testPrefix+"/pending/")) == 0
	})
	stopA()
	stopB()
	<-doneA
	<-doneB
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.overlap {
		t.Fatal("one event was attempted on both instances at once")
	}
	for i := range n {
		id := fmt.Sprintf("e%02d", i)
		if shared.ok[id] != 1 || shared.sends[id] != 2 {
			t.Fatalf("%s: %d attempts, %d delivered; want 2 and 1", id, shared.sends[id], shared.ok[id])
		}
	}
	if a.outs.get(OutcomeLost)+b.outs.get(OutcomeLost) != 0 {
		t.Fatal("events reported lost")
	}
}
