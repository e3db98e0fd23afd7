package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// settledSpy records what Config.OnSettle is told, by which queue, and
// whether the event's locks were held at the time.
type settledSpy struct {
	mu    sync.Mutex
	st    *memStorage
	calls []settledCall
}

type settledCall struct {
	instance string
	ev       Event
	locked   bool // the event's storage or process lock was held
}

func newSettledSpy(st *memStorage) *settledSpy { return &settledSpy{st: st} }

// on is the OnSettle of the queue named instance.
func (s *settledSpy) on(instance string) func(*Config) {
	return func(c *Config) {
		c.OnSettle = func(ev Event) {
			lock := (&Queue{prefix: testPrefix}).lockName(ev.ID)
			processLocks.mu.Lock()
			_, local := processLocks.held[lock]
			processLocks.mu.Unlock()
			locked := local || s.st.locked(lock)
			s.mu.Lock()
			s.calls = append(s.calls, settledCall{instance, ev, locked})
			s.mu.Unlock()
		}
	}
}

func (c settledCall) String() string {
	return fmt.Sprintf("%s: %s %s attempts %d status %d locked %v", c.instance, c.ev.ID, c.ev.State, c.ev.Attempts, c.ev.Status, c.locked)
}

func (s *settledSpy) all() []settledCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]settledCall(nil), s.calls...)
}

// byID counts the calls per event id.
func (s *settledSpy) byID() map[string][]settledCall {
	out := map[string][]settledCall{}
	for _, c := range s.all() {
		out[c.ev.ID] = append(out[c.ev.ID], c)
	}
	return out
}

// OnSettle is called exactly once per recorded outcome (delivered,
// refused, dead), after the write, outside the event's lock, with the
// record as written; never for an outcome storage did not take, and again
// for nothing: not for the queue's later clean-up, a copy, or a retry.
func TestOnSettleOncePerRecordedOutcome(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h *harness, spy *settledSpy)
		want State // "" for no call
		// attempts and status the reported record carries
		attempts, status int
	}{
		{name: "first attempt delivered", want: Delivered, attempts: 1, status: 200, run: func(t *testing.T, h *harness, spy *settledSpy) {
			ev := h.event("e1")
			mustBegin(t, h, ev)
			settleWant(t, h, ev, 200, Delivered, false)
		}},
		{name: "first attempt refused", want: Refused, attempts: 1, status: 409, run: func(t *testing.T, h *harness, spy *settledSpy) {
			ev := h.event("e1")
			mustBegin(t, h, ev)
			settleWant(t, h, ev, 409, Refused, false)
		}},
		{name: "first attempt's outcome not written", run: func(t *testing.T, h *harness, spy *settledSpy) {
			ev := h.event("e1")
			mustBegin(t, h, ev)
			h.st.setFault(failOn("/done/", "store"))
			settleWant(t, h, ev, 200, Received, true)
			h.st.setFault(nil)
			h.drive(30, time.Second)
		}},
		{name: "first attempt not taken: queued, then delivered by the queue", want: Delivered, attempts: 2, status: 200, run: func(t *testing.T, h *harness, spy *settledSpy) {
			h.app.answer = func(_ *Event, n int) (int, []byte, error) { return 200, nil, nil }
			ev := h.event("e1")
			mustBegin(t, h, ev)
			settleWant(t, h, ev, 503, Received, false)
			h.drive(5, time.Second)
			if h.app.okCount("e1") != 1 {
				t.Fatal("not delivered by the queue")
			}
			copyOf := h.event("e1")
			if c, err := h.q.Begin(ctx, copyOf); err != nil || c.Fresh || c.State != Delivered {
				t.Fatalf("copy = %+v, %v", c, err)
			}
		}},
		{name: "dead after retry_for", want: Dead, attempts: -1, status: 503, run: func(t *testing.T, h *harness, spy *settledSpy) {
			h.app.answer = func(*Event, int) (int, []byte, error) { return 503, nil, nil }
			h.claim(h.event("e1"), 0)
			h.drive(20*60, time.Second)
			if h.q.Owed() != 0 {
				t.Fatal("still owed after retry_for")
			}
			h.drive(60, time.Second)
		}},
		{name: "dead record written once storage works again", want: Dead, attempts: -1, status: 500, run: func(t *testing.T, h *harness, spy *settledSpy) {
			h.app.answer = func(*Event, int) (int, []byte, error) { return 500, nil, nil }
			h.claim(h.event("e1"), 0)
			h.st.setFault(failOn("/dead/", "store"))
			h.drive(15*60, time.Second)
			if len(spy.all()) != 0 {
				t.Fatal("reported before the dead record was written")
			}
			h.st.setFault(nil)
			h.drive(15*60, time.Second)
		}},
		{name: "outcome storage refused, written on the next try", want: Delivered, attempts: 1, status: 200, run: func(t *testing.T, h *harness, spy *settledSpy) {
			ev := h.event("e1")
			h.claim(ev, 4*time.Second)
			h.st.setFault(failOn("/done/", "store"))
			settleWant(t, h, ev, 200, Received, true)
			h.drive(20, time.Second)
			if len(spy.all()) != 0 {
				t.Fatal("reported before the outcome was written")
			}
			h.st.setFault(nil)
			h.drive(40, 10*time.Second)
			if h.q.Owed() != 0 {
				t.Fatal("the outcome was not recorded")
			}
		}},
		{name: "pending record left over: reported at the write, not at the clean-up", want: Delivered, attempts: 1, status: 200, run: func(t *testing.T, h *harness, spy *settledSpy) {
			ev := h.event("e1")
			h.claim(ev, 4*time.Second)
			h.st.setFault(failOn("/pending/", "delete"))
			settleWant(t, h, ev, 200, Delivered, false)
			h.st.setFault(nil)
			h.drive(30, time.Second)
			if h.st.has(testPrefix + "/pending/e1") {
				t.Fatal("the leftover was not removed")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMem()
			spy := newSettledSpy(st)
			h := newHarness(t, st, newClock(), "inst-a", spy.on("inst-a"), func(c *Config) { c.RetryFor = 10 * time.Minute })
			tc.run(t, h, spy)
			calls := spy.all()
			if tc.want == "" {
				if len(calls) != 0 {
					t.Fatalf("OnSettle was called for an outcome that was not recorded: %v", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("OnSettle called %d times, want once: %v", len(calls), calls)
			}
			c := calls[0]
			if c.locked {
				t.Error("OnSettle was called with the event's lock held")
			}
			if c.ev.ID != "e1" || c.ev.Object != "uploads/e1" || c.ev.State != tc.want || c.ev.Status != tc.status ||
				(tc.attempts > 0 && c.ev.Attempts != tc.attempts) || (tc.attempts < 0 && c.ev.Attempts < 2) {
				t.Fatalf("reported record: state %s, attempts %d, status %d; want %s, %d, %d",
					c.ev.State, c.ev.Attempts, c.ev.Status, tc.want, tc.attempts, tc.status)
			}
			// What was reported is what storage holds.
			key := h.q.doneKey("e1", hourCeil(c.ev.Expires))
			if tc.want == Dead {
				key = h.q.deadKey("e1", hourCeil(c.ev.Expires))
			}
			if rec := h.record(key, "e1"); rec.State != c.ev.State || rec.Attempts != c.ev.Attempts || rec.Status != c.ev.Status {
				t.Fatalf("stored %s/%d/%d, reported %s/%d/%d", rec.State, rec.Attempts, rec.Status, c.ev.State, c.ev.Attempts, c.ev.Status)
			}
			if tc.want == Refused && string(c.ev.Answer) != `{"e":1}` {
				t.Errorf("refused answer %q", c.ev.Answer)
			}
		})
	}
}

func mustBegin(t *testing.T, h *harness, ev *Event) {
	t.Helper()
	if c, err := h.q.Begin(context.Background(), ev); err != nil || !c.Fresh {
		t.Fatalf("begin = %+v, %v", c, err)
	}
}

// settleWant settles ev with status and requires the state (and an error
// when failed).
func settleWant(t *testing.T, h *harness, ev *Event, status int, want State, failed bool) {
	t.Helper()
	st, err := h.q.Settle(context.Background(), ev, status, []byte(`{"e":1}`), nil)
	if st != want || (err != nil) != failed || (failed && !errors.Is(err, errInjected)) {
		t.Fatalf("settle %d = %s, %v; want %s (failed %v)", status, st, err, want, failed)
	}
}

// Two queues sharing one storage, as two instances (or a reload's old and
// new handler): every outcome is reported exactly once, by one of them,
// whichever records it, including for copies of a callback begun on both
// at once.
func TestOnSettleOnceAcrossQueuesSharingStorage(t *testing.T) {
	st, clk := newMem(), newClock()
	spy := newSettledSpy(st)
	shared := newApp(clk.Now)
	// d…: the app takes it at its second attempt; r…: it refuses it then;
	// x…: it never takes it (dead after retry_for).
	shared.answer = func(ev *Event, n int) (int, []byte, error) {
		switch {
		case strings.HasPrefix(ev.ID, "x") || n == 1:
			return 503, nil, nil
		case strings.HasPrefix(ev.ID, "r"):
			return 422, []byte(`{"error":"no"}`), nil
		}
		return 200, nil, nil
	}
	mods := func(instance string) []func(*Config) {
		return []func(*Config){spy.on(instance), func(c *Config) {
			c.Send = shared.Send
			c.RetryFor = 10 * time.Minute
		}}
	}
	a := newHarness(t, st, clk, "inst-a", mods("inst-a")...)
	b := newHarness(t, st, clk, "inst-b", mods("inst-b")...)
	want := map[string]State{}
	for i := range 24 {
		id := fmt.Sprintf("%c%02d", "drx"[i%3], i)
		want[id] = map[byte]State{'d': Delivered, 'r': Refused, 'x': Dead}[id[0]]
		h := a
		if i%2 == 1 {
			h = b
		}
		h.claim(h.event(id), 0)
	}
	// Copies of one upload begun on both queues at once: one is fresh, and
	// its first attempt is delivered.
	var wg sync.WaitGroup
	var fresh sync.Map
	for _, h := range []*harness{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := h.event("copy")
			c, err := h.q.Begin(context.Background(), ev)
			if err != nil {
				t.Error(err)
				return
			}
			if c.Fresh {
				fresh.Store(h.q.instance, true)
				if s, err := h.q.Settle(context.Background(), ev, 200, nil, nil); s != Delivered || err != nil {
					t.Errorf("settle copy = %s, %v", s, err)
				}
			}
		}()
	}
	wg.Wait()
	want["copy"] = Delivered

	stopA, doneA := runQueue(a)
	stopB, doneB := runQueue(b)
	advanceUntil(t, clk, 30*time.Second, "every event settled", func() bool {
		return len(st.keys(testPrefix+"/pending/")) == 0
	})
	clk.Advance(time.Minute)
	time.Sleep(50 * time.Millisecond) // the queues run a few more steps: nothing more is reported
	stopA()
	stopB()
	<-doneA
	<-doneB

	got := spy.byID()
	instances := map[string]int{}
	for id, state := range want {
		calls := got[id]
		if len(calls) != 1 {
			t.Errorf("%s: reported %d times, want once", id, len(calls))
			continue
		}
		if calls[0].ev.State != state {
			t.Errorf("%s: reported %s, want %s", id, calls[0].ev.State, state)
		}
		instances[calls[0].instance]++
	}
	if len(got) != len(want) {
		t.Errorf("%d events reported, want %d", len(got), len(want))
	}
	n := 0
	fresh.Range(func(k, _ any) bool {
		n++
		if got["copy"][0].instance != k {
			t.Errorf("the copy was reported by %s, but settled by %s", got["copy"][0].instance, k)
		}
		return true
	})
	if n != 1 {
		t.Fatalf("%d fresh copies", n)
	}
	t.Logf("reported by instance: %v", instances)
}
