package delivery

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// An event begun and delivered at its first attempt costs one write, its
// done record, and frees its locks; one the app does not take is written
// once as pending, due after the first backoff, and the queue delivers it.
func TestBeginCostsOneWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		want   State
		key    string
	}{
		{200, Delivered, "/done/"},
		{409, Refused, "/done/"},
		{503, Received, "/pending/"},
	} {
		h := newHarness(t, newMem(), newClock(), "inst-a")
		ev := h.event("e1")
		c, err := h.q.Begin(ctx, ev)
		if err != nil || !c.Fresh || c.State != Received {
			t.Fatalf("begin = %+v, %v", c, err)
		}
		if n := h.st.count("store", ""); n != 0 {
			t.Fatalf("begin wrote %d records before the attempt", n)
		}
		if !h.st.locked(h.q.lockName("e1")) {
			t.Fatal("the event's lock is not held during the first attempt")
		}
		st, err := h.q.Settle(ctx, ev, tc.status, []byte(`{"e":1}`), nil)
		if st != tc.want || err != nil {
			t.Fatalf("%d: settle = %s, %v", tc.status, st, err)
		}
		if n, k := h.st.count("store", ""), h.st.count("store", tc.key); n != 1 || k != 1 {
			t.Fatalf("%d: %d writes (%d under %s), want exactly one there", tc.status, n, k, tc.key)
		}
		if h.st.locked(h.q.lockName("e1")) || h.st.count("delete", "") != 0 {
			t.Fatalf("%d: lock held %v, %d deletes", tc.status, h.st.locked(h.q.lockName("e1")), h.st.count("delete", ""))
		}
		if tc.want == Received {
			if rec := h.record(testPrefix+"/pending/e1", "e1"); rec.Attempts != 1 || !rec.NextAt.Equal(t0.Add(time.Second)) || !rec.Lease.IsZero() {
				t.Fatalf("pending record %+v", rec)
			}
			h.drive(3, time.Second)
			if h.app.okCount("e1") != 1 || h.q.Owed() != 0 {
				t.Fatalf("the queue did not deliver the event: %d", h.app.okCount("e1"))
			}
		}
	}
}

// Copies begun while the first attempt is under way, on this instance and
// another, wait for it and then see its outcome; exactly one is fresh.
func TestBeginCopiesWaitForTheFirstAttempt(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	a, b := newHarness(t, st, clk, "inst-a"), newHarness(t, st, clk, "inst-b")
	ev := a.event("e1")
	if c, err := a.q.Begin(ctx, ev); err != nil || !c.Fresh {
		t.Fatalf("begin = %+v, %v", c, err)
	}
	var wg sync.WaitGroup
	got := make(chan Claim, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := []*harness{a, b}[i%2]
			c, err := h.q.Begin(ctx, h.event("e1"))
			if err != nil {
				t.Error(err)
				return
			}
			got <- c
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if len(got) != 0 {
		t.Fatal("a copy did not wait for the first attempt")
	}
	if st, err := a.q.Settle(ctx, ev, 200, nil, nil); st != Delivered || err != nil {
		t.Fatalf("settle = %s, %v", st, err)
	}
	wg.Wait()
	close(got)
	for c := range got {
		if c.Fresh || c.State != Delivered {
			t.Fatalf("copy = fresh %v, %s", c.Fresh, c.State)
		}
	}
	if n := st.count("lock", "") - st.count("unlock", ""); n != 0 {
		t.Fatalf("%d locks not released", n)
	}

	// A copy that cannot wait as long gives up with an error.
	ev2 := a.event("e2")
	if _, err := a.q.Begin(ctx, ev2); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := b.q.Begin(short, b.event("e2")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("copy with a short deadline: %v", err)
	}
	a.q.Unhold(ctx, "e2")
}

// A first outcome storage refuses: the app's 2xx or 4xx stands, unrecorded;
// a retryable one is ErrNotRecorded, and nothing is owed. Either way the
// locks are freed and a copy is fresh again.
func TestBeginSettleStorageFailure(t *testing.T) {
	ctx := context.Background()
	for _, status := range []int{200, 409, 503} {
		h := newHarness(t, newMem(), newClock(), "inst-a")
		ev := h.event("e1")
		if _, err := h.q.Begin(ctx, ev); err != nil {
			t.Fatal(err)
		}
		h.st.setFault(failOn("", "store"))
		st, err := h.q.Settle(ctx, ev, status, nil, nil)
		if st != Received || !errors.Is(err, errInjected) || errors.Is(err, ErrNotRecorded) != (status == 503) {
			t.Fatalf("%d: settle = %s, %v", status, st, err)
		}
		h.requireCause("recording")
		h.st.setFault(nil)
		if h.q.Owed() != 0 || h.st.locked(h.q.lockName("e1")) {
			t.Fatalf("%d: owed %d, locked %v", status, h.q.Owed(), h.st.locked(h.q.lockName("e1")))
		}
		if c, err := h.q.Begin(ctx, h.event("e1")); err != nil || !c.Fresh {
			t.Fatalf("%d: a copy after the failure: %+v, %v", status, c, err)
		}
		h.q.Unhold(ctx, "e1")
	}
}

// Release and Unhold end a begun event without writing; Unhold after
// Settle does nothing.
func TestBeginReleaseAndUnhold(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a")
	ev := h.event("e1")
	if _, err := h.q.Begin(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Release(ctx, ev); err != nil {
		t.Fatal(err)
	}
	ev2 := h.event("e2")
	if _, err := h.q.Begin(ctx, ev2); err != nil {
		t.Fatal(err)
	}
	h.q.Unhold(ctx, "e2")
	if n := h.st.count("store", "") + h.st.count("delete", ""); n != 0 {
		t.Fatalf("%d writes for events that were released", n)
	}
	for _, id := range []string{"e1", "e2"} {
		c, err := h.q.Begin(ctx, h.event(id))
		if err != nil || !c.Fresh {
			t.Fatalf("%s after release: %+v, %v", id, c, err)
		}
		if st, err := h.q.Settle(ctx, c.Event, 200, nil, nil); st != Delivered || err != nil {
			t.Fatal(st, err)
		}
		h.q.Unhold(ctx, id) // after Settle: nothing
	}
	if n := h.st.count("lock", "") - h.st.count("unlock", ""); n != 0 {
		t.Fatalf("%d locks not released", n)
	}
	if n := h.st.count("store", ""); n != 2 {
		t.Fatalf("%d writes, want 2", n)
	}
}
