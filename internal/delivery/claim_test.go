package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestClaimFreshWritesOnePendingRecord(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a")
	ev := h.event("e1")
	c, err := h.q.Claim(context.Background(), ev, 4*time.Second)
	if err != nil || !c.Fresh || c.State != Received || c.Event != ev {
		t.Fatalf("claim = %+v, %v", c, err)
	}
	if n := h.st.count("store", ""); n != 1 {
		t.Fatalf("a fresh claim made %d writes, want 1", n)
	}
	if n := h.st.count("lock", "e1"); n != 1 {
		t.Fatalf("a fresh claim took %d locks, want 1", n)
	}
	if h.st.locked(h.q.lockName("e1")) {
		t.Fatal("the claim left its lock held")
	}
	rec := h.record(testPrefix+"/pending/e1", "e1")
	want := t0.Add(4 * time.Second)
	if rec.State != Received || rec.Owner != "inst-a" || !rec.Lease.Equal(want) || !rec.NextAt.Equal(want) ||
		!rec.Created.Equal(t0) || !bytes.Equal(rec.Body, ev.Body) || rec.Header["Content-Type"] != "application/json" {
		t.Fatalf("pending record = %+v", rec)
	}
	if h.q.Owed() != 1 || !h.q.snapshot("e1").due.Equal(want) {
		t.Fatalf("the queue does not owe the event after its first-attempt lease: %+v", h.q.snapshot("e1"))
	}
}

func TestClaimReportsWhatIsRecorded(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a")

	// Owed (in flight).
	pend := h.event("pend")
	h.claim(pend, 4*time.Second)
	c, err := h.q.Claim(ctx, h.event("pend"), 4*time.Second)
	if err != nil || c.Fresh || c.State != Received {
		t.Fatalf("copy of an owed event: %+v, %v", c, err)
	}

	// Delivered.
	del := h.event("del")
	h.claim(del, 4*time.Second)
	if st, err := h.q.Settle(ctx, del, 200, nil, nil); st != Delivered || err != nil {
		t.Fatalf("settle 200 = %s, %v", st, err)
	}
	// Refused, with the app's answer.
	ref := h.event("ref")
	h.claim(ref, 4*time.Second)
	if st, err := h.q.Settle(ctx, ref, 422, []byte(`{"error":"bad type"}`), nil); st != Refused || err != nil {
		t.Fatalf("settle 422 = %s, %v", st, err)
	}

	h.st.resetOps()
	c, err = h.q.Claim(ctx, h.event("del"), 4*time.Second)
	if err != nil || c.Fresh || c.State != Delivered {
		t.Fatalf("copy of a delivered event: %+v, %v", c, err)
	}
	c, err = h.q.Claim(ctx, h.event("ref"), 4*time.Second)
	if err != nil || c.Fresh || c.State != Refused || c.Event.Status != 422 || string(c.Event.Answer) != `{"error":"bad type"}` {
		t.Fatalf("copy of a refused event: %+v, %v", c, err)
	}
	if n := h.st.count("store", ""); n != 0 {
		t.Fatalf("copies made %d writes, want none", n)
	}
	if got := h.outs.get(OutcomeDuplicate); got != 3 {
		t.Fatalf("duplicates observed = %d, want 3", got)
	}
}

func TestClaimLooksInTheCandidateExpiryGroups(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a")
	ev := h.event("e1")
	h.claim(ev, time.Second)
	if _, err := h.q.Settle(ctx, ev, 200, nil, nil); err != nil {
		t.Fatal(err)
	}
	// A copy whose expiry lands in the next hour group.
	cp := h.event("e1")
	cp.Expires = ev.Expires.Add(time.Hour)
	c, err := h.q.Claim(ctx, cp, time.Second, ev.Expires.Add(-time.Hour), ev.Expires)
	if err != nil || c.Fresh || c.State != Delivered {
		t.Fatalf("copy with the original expiry among the candidates: %+v, %v", c, err)
	}
	// Without the candidate it is not found: the groups are the only index.
	cp2 := h.event("e1")
	cp2.Expires = ev.Expires.Add(time.Hour)
	c, err = h.q.Claim(ctx, cp2, time.Second)
	if err != nil || !c.Fresh {
		t.Fatalf("copy without the candidate: %+v, %v", c, err)
	}
}

func TestClaimStorageFailureIsAnError(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(h *harness) // after the first event was delivered
		fault func(op, key string) error
	}{
		{"lock fails", nil, failOn("e1", "lock")},
		{"pending read fails", nil, failOn("/pending/e1", "load")},
		{"done read fails", nil, failOn("/done/", "load")},
		{"dead read fails", nil, failOn("/dead/", "load")},
		{"write fails", nil, failOn("/pending/e1", "store")},
		{"corrupt pending record", func(h *harness) {
			_ = h.st.Store(ctx, testPrefix+"/pending/e1", []byte("{not json"))
		}, nil},
		{"record of another id", func(h *harness) {
			_ = h.st.Store(ctx, testPrefix+"/pending/e1", []byte(`{"id":"e2","state":"received"}`))
		}, nil},
		{"wrong state in done", func(h *harness) {
			g := hourCeil(t0.Add(2 * time.Hour))
			_ = h.st.Store(ctx, fmt.Sprintf("%s/done/%d/e1", testPrefix, g), []byte(`{"id":"e1","state":"received"}`))
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, newMem(), newClock(), "inst-a")
			if c.setup != nil {
				c.setup(h)
			}
			h.st.setFault(c.fault)
			got, err := h.q.Claim(ctx, h.event("e1"), time.Second)
			if err == nil || got.Fresh || got.State != "" {
				t.Fatalf("claim = %+v, %v; want an error and nothing else", got, err)
			}
			if h.st.locked(h.q.lockName("e1")) {
				t.Fatal("the lock was left held")
			}
			if h.outs.get(OutcomeStorageError) == 0 {
				t.Fatal("storage_error not observed")
			}
		})
	}
}

func TestClaimStalledLockEndsWithCtx(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a")
	h.st.setStall(func(op, key string) bool { return op == "lock" })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	c, err := h.q.Claim(ctx, h.event("e1"), time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || c.Fresh {
		t.Fatalf("claim on a stalled storage = %+v, %v", c, err)
	}
}

func TestClaimRejectsBadEvents(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a")
	for _, ev := range []*Event{
		{ID: "a/b", Expires: t0},
		{ID: "", Expires: t0},
		{ID: "ok"}, // no expiry
	} {
		if _, err := h.q.Claim(context.Background(), ev, time.Second); err == nil {
			t.Fatalf("claim accepted %+v", ev)
		}
	}
	if len(h.st.keys("")) != 0 {
		t.Fatal("a rejected claim wrote")
	}
}

// Copies racing on two instances sharing one storage: exactly one is
// fresh; after delivery every copy is a duplicate; after a refusal every
// copy gets the app's answer.
func TestClaimConcurrentCopiesOnTwoInstances(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	qs := []*harness{newHarness(t, st, clk, "inst-a"), newHarness(t, st, clk, "inst-b")}

	race := func(id string) (fresh []*Claim, others []Claim) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := qs[i%2]
				c, err := h.q.Claim(ctx, h.event(id), 4*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if c.Fresh {
					fresh = append(fresh, &c)
				} else {
					others = append(others, c)
				}
			}()
		}
		wg.Wait()
		return fresh, others
	}

	for _, tc := range []struct {
		id     string
		status int
		answer string
		want   State
	}{
		{"del", 200, "", Delivered},
		{"ref", 409, `{"error":"exists"}`, Refused},
	} {
		fresh, others := race(tc.id)
		if len(fresh) != 1 {
			t.Fatalf("%s: %d fresh claims, want exactly 1", tc.id, len(fresh))
		}
		for _, c := range others {
			if c.State != Received {
				t.Fatalf("%s: copy during the first attempt = %s, want received", tc.id, c.State)
			}
		}
		owner := qs[0]
		if fresh[0].Event.Owner == "inst-b" {
			owner = qs[1]
		}
		if st, err := owner.q.Settle(ctx, fresh[0].Event, tc.status, []byte(tc.answer), nil); st != tc.want || err != nil {
			t.Fatalf("%s: settle = %s, %v", tc.id, st, err)
		}
		fresh, others = race(tc.id)
		if len(fresh) != 0 || len(others) != 40 {
			t.Fatalf("%s: after settling, %d fresh claims", tc.id, len(fresh))
		}
		for _, c := range others {
			if c.State != tc.want || c.Event.Status != tc.status || string(c.Event.Answer) != tc.answer {
				t.Fatalf("%s: copy after settling = %s status %d answer %q", tc.id, c.State, c.Event.Status, c.Event.Answer)
			}
		}
	}
	if keys := st.keys(testPrefix + "/pending/"); len(keys) != 0 {
		t.Fatalf("pending records left: %v", keys)
	}
	if n := st.count("lock", "") - st.count("unlock", ""); n != 0 {
		t.Fatalf("%d locks not released", n)
	}
}

// Release forgets a fresh event (a copy is fresh again), leaves alone one
// another holder has taken, and keeps it on a storage failure.
func TestReleaseOfAFreshEventAfterItsFirstAttempt(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	h := newHarness(t, st, clk, "inst-a")

	ev := h.event("e1")
	h.claim(ev, 4*time.Second)
	h.st.setFault(failOn("/pending/e1", "delete"))
	if err := h.q.Release(ctx, ev); !errors.Is(err, errInjected) || !st.has(testPrefix+"/pending/e1") {
		t.Fatalf("release on a failing storage = %v", err)
	}
	h.st.setFault(nil)
	if err := h.q.Release(ctx, ev); err != nil || st.has(testPrefix+"/pending/e1") || h.q.Owed() != 0 {
		t.Fatalf("release = %v; pending %v, owed %d", err, st.has(testPrefix+"/pending/e1"), h.q.Owed())
	}
	h.claim(h.event("e1"), time.Hour) // fresh again (and not due during the rest)

	taken := h.event("e2")
	h.claim(taken, time.Second)
	clk.Advance(5 * time.Second)
	b := newHarness(t, st, clk, "inst-b")
	b.app.gate = make(chan struct{})
	b.app.started = make(chan string, 1)
	b.q.step(ctx)
	if id := <-b.app.started; id != "e2" {
		t.Fatalf("b attempted %s", id)
	}
	if err := h.q.Release(ctx, taken); err != nil || !st.has(testPrefix+"/pending/e2") {
		t.Fatalf("release of an event another holder took = %v", err)
	}
	close(b.app.gate)
	b.q.wg.Wait()
}
