package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSettleOutcomes(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a")
	g := hourCeil(t0.Add(2 * time.Hour))

	ok := h.event("ok")
	h.claim(ok, 4*time.Second)
	h.st.resetOps()
	if st, err := h.q.Settle(ctx, ok, 204, []byte("ignored"), nil); st != Delivered || err != nil {
		t.Fatalf("settle 204 = %s, %v", st, err)
	}
	if n := h.st.count("store", ""); n != 1 {
		t.Fatalf("delivery made %d writes, want 1", n)
	}
	rec := h.record(fmt.Sprintf("%s/done/%d/ok", testPrefix, g), "ok")
	if rec.State != Delivered || rec.Attempts != 1 || rec.Status != 204 || rec.Answer != nil || rec.Owner != "" || !rec.Lease.IsZero() {
		t.Fatalf("delivered record = %+v", rec)
	}
	if h.st.has(testPrefix + "/pending/ok") {
		t.Fatal("the pending record of a delivered event remains")
	}
	if ok.State != Delivered || h.q.Owed() != 0 {
		t.Fatalf("event not updated or still owed: %s, owed %d", ok.State, h.q.Owed())
	}

	ref := h.event("ref")
	h.claim(ref, 4*time.Second)
	big := bytes.Repeat([]byte("x"), MaxAnswer+5000)
	if st, err := h.q.Settle(ctx, ref, 403, big, nil); st != Refused || err != nil {
		t.Fatalf("settle 403 = %s, %v", st, err)
	}
	rec = h.record(fmt.Sprintf("%s/done/%d/ref", testPrefix, g), "ref")
	if rec.State != Refused || rec.Status != 403 || len(rec.Answer) != MaxAnswer {
		t.Fatalf("refused record: state %s status %d answer %d bytes", rec.State, rec.Status, len(rec.Answer))
	}

	for i, tc := range []struct {
		status int
		err    error
	}{{503, nil}, {0, errors.New("dial tcp: connection refused")}, {429, nil}, {302, nil}} {
		id := fmt.Sprintf("retry%d", i)
		ev := h.event(id)
		h.claim(ev, 4*time.Second)
		h.st.resetOps()
		if st, err := h.q.Settle(ctx, ev, tc.status, []byte("busy"), tc.err); st != Received || err != nil {
			t.Fatalf("settle %d/%v = %s, %v", tc.status, tc.err, st, err)
		}
		if n := h.st.count("store", ""); n != 1 {
			t.Fatalf("rescheduling made %d writes, want 1", n)
		}
		rec = h.record(testPrefix+"/pending/"+id, id)
		if rec.State != Received || rec.Attempts != 1 || !rec.NextAt.Equal(t0.Add(time.Second)) ||
			!rec.Lease.IsZero() || rec.Owner != "" || rec.Status != tc.status || rec.LastError != errText(tc.err) {
			t.Fatalf("rescheduled record = %+v", rec)
		}
		if !h.q.snapshot(id).due.Equal(t0.Add(time.Second)) {
			t.Fatalf("index due = %v", h.q.snapshot(id).due)
		}
	}
	if h.outs.get(OutcomeQueued) != 4 || h.outs.get(OutcomeDelivered) != 1 || h.outs.get(OutcomeRefused) != 1 {
		t.Fatalf("outcomes = %v", h.outs.n)
	}
}

// A delivered or refused outcome that cannot be recorded leaves the event
// owed, logged with its cause, and backed off.
func TestSettleWriteFailureKeepsEventOwed(t *testing.T) {
	ctx := context.Background()
	for _, status := range []int{200, 400, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			h := newHarness(t, newMem(), newClock(), "inst-a")
			ev := h.event("e1")
			h.claim(ev, 4*time.Second)
			h.st.setFault(failOn("", "store"))
			st, err := h.q.Settle(ctx, ev, status, nil, nil)
			if st != Received || !errors.Is(err, errInjected) {
				t.Fatalf("settle = %s, %v; want received and the storage error", st, err)
			}
			if !h.st.has(testPrefix + "/pending/e1") {
				t.Fatal("the pending record is gone")
			}
			if e := h.q.snapshot("e1"); !e.due.Equal(t0.Add(time.Second)) || e.fails != 1 {
				t.Fatalf("not backed off: %+v", e)
			}
			h.requireCause("stays owed")
			if ev.State != Received {
				t.Fatalf("the caller's event says %s", ev.State)
			}
		})
	}
}

// An outcome the app decided but storage refused to record is written by
// the queue's next try once storage works again; the event is not sent to
// the app again meanwhile.
func TestSettleUnrecordedOutcomeIsWrittenNotResent(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		state  State
	}{{200, Delivered}, {409, Refused}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			h := newHarness(t, newMem(), newClock(), "inst-a")
			ev := h.event("e1")
			h.claim(ev, 4*time.Second)
			h.st.setFault(failOn("/done/", "store"))
			if st, err := h.q.Settle(ctx, ev, tc.status, []byte(`{"e":1}`), nil); st != Received || !errors.Is(err, errInjected) {
				t.Fatalf("settle = %s, %v", st, err)
			}
			h.drive(20, time.Second) // storage still refuses: tried with backoff
			if h.app.total() != 0 {
				t.Fatalf("an event the app answered was sent again %d times", h.app.total())
			}
			h.st.setFault(nil)
			h.drive(40, 10*time.Second)
			if h.app.total() != 0 {
				t.Fatalf("an event the app answered was sent again %d times", h.app.total())
			}
			if h.q.Owed() != 0 || h.st.has(testPrefix+"/pending/e1") {
				t.Fatal("the outcome was not recorded")
			}
			if rec := h.record(h.q.doneKey("e1", hourCeil(ev.Expires)), "e1"); rec.State != tc.state {
				t.Fatalf("done record %+v, want %s", rec, tc.state)
			}
		})
	}
}

// If only the pending record's delete fails, the event is delivered; the
// queue removes the leftover on its next try and does not send it again.
func TestSettleLeftoverPendingIsCleanedNotResent(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a")
	ev := h.event("e1")
	h.claim(ev, 4*time.Second)
	h.st.setFault(failOn("/pending/", "delete"))
	if st, err := h.q.Settle(ctx, ev, 200, nil, nil); st != Delivered || err != nil {
		t.Fatalf("settle = %s, %v", st, err)
	}
	h.requireCause("removing the pending record")
	h.st.setFault(nil)
	h.drive(30, time.Second)
	if h.app.total() != 0 {
		t.Fatalf("the delivered event was sent again %d times", h.app.total())
	}
	if h.st.has(testPrefix+"/pending/e1") || h.q.Owed() != 0 {
		t.Fatal("the leftover pending record was not removed")
	}
}

// An attempt whose lease lapsed, and whose event another instance took
// meanwhile, does not overwrite the other's lease.
func TestSettleAfterLapsedLeaseLeavesOthersLease(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	a := newHarness(t, st, clk, "inst-a")
	b := newHarness(t, st, clk, "inst-b")
	ev := a.event("e1")
	a.claim(ev, 4*time.Second)
	clk.Advance(10 * time.Second) // a's first attempt outlived its lease

	b.app.gate = make(chan struct{})
	b.app.started = make(chan string, 1)
	b.q.step(ctx)
	<-b.app.started // b holds the lease and is sending

	if st, err := a.q.Settle(ctx, ev, 503, nil, nil); st != Received || err != nil {
		t.Fatalf("late settle = %s, %v", st, err)
	}
	rec := a.record(testPrefix+"/pending/e1", "e1")
	if rec.Owner != "inst-b" || !rec.Lease.After(clk.Now()) {
		t.Fatalf("the late settle overwrote the other's lease: %+v", rec)
	}
	close(b.app.gate)
	b.q.wg.Wait()
	if rec := b.record(fmt.Sprintf("%s/done/%d/e1", testPrefix, hourCeil(ev.Expires)), "e1"); rec.State != Delivered {
		t.Fatalf("state %s", rec.State)
	}
}

// An event given up after its expiry is kept in the group of the hour it
// was given up; a queue that knew it finds it there and reports nothing
// lost.
func TestDeadAfterExpiryIsNotReportedLost(t *testing.T) {
	ctx := context.Background()
	st, clk := newMem(), newClock()
	a := newHarness(t, st, clk, "inst-a", func(c *Config) { c.RetryFor = 3 * time.Hour })
	b := newHarness(t, st, clk, "inst-b", func(c *Config) { c.RetryFor = 3 * time.Hour })
	ev := a.event("e1")
	ev.Expires = t0.Add(time.Hour)
	a.claim(ev, 10*time.Second)
	b.drive(1, 0) // b knows it, due at t0+10s
	clk.Advance(4 * time.Hour)
	if st, err := a.q.Settle(ctx, ev, 503, nil, nil); st != Dead || err != nil {
		t.Fatalf("settle = %s, %v", st, err)
	}
	key := fmt.Sprintf("%s/dead/%d/e1", testPrefix, hourCeil(clk.Now()))
	if !st.has(key) {
		t.Fatalf("dead record not at %s: %v", key, st.keys(testPrefix))
	}
	b.drive(2, time.Second)
	if b.q.Owed() != 0 || b.outs.get(OutcomeLost) != 0 || b.app.total() != 0 {
		t.Fatalf("b: owed %d, lost %d, sent %d", b.q.Owed(), b.outs.get(OutcomeLost), b.app.total())
	}
}
