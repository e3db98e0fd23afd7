package delivery

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// t0 is the test clock's start: not on a whole hour.
var t0 = time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC)

// clock is a manually advanced clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// app is the fake upstream app: it records each attempt and answers with
// answer (default 200), optionally waiting for gate first.
type app struct {
	mu       sync.Mutex
	sends    map[string]int // attempts by id
	ok       map[string]int // 2xx answers by id
	active   map[string]int // attempts in flight by id
	overlap  bool           // two attempts at one id were in flight at once
	maxBusy  int            // most attempts in flight at once
	at       map[string][]time.Time
	answer   func(ev *Event, n int) (int, []byte, error) // n: 1 for the first attempt at ev
	gate     chan struct{}
	started  chan string
	deadline []time.Duration // each attempt's ctx deadline, from its start
	now      func() time.Time
}

func newApp(now func() time.Time) *app {
	return &app{sends: map[string]int{}, ok: map[string]int{}, active: map[string]int{},
		at: map[string][]time.Time{}, now: now}
}

func (a *app) Send(ctx context.Context, ev *Event) (int, []byte, error) {
	a.mu.Lock()
	a.sends[ev.ID]++
	n := a.sends[ev.ID]
	a.at[ev.ID] = append(a.at[ev.ID], a.now())
	a.active[ev.ID]++
	if a.active[ev.ID] > 1 {
		a.overlap = true
	}
	busy := 0
	for _, v := range a.active {
		busy += v
	}
	a.maxBusy = max(a.maxBusy, busy)
	if d, ok := ctx.Deadline(); ok {
		a.deadline = append(a.deadline, time.Until(d))
	}
	gate, started, answer := a.gate, a.started, a.answer
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.active[ev.ID]--
		a.mu.Unlock()
	}()
	if started != nil {
		started <- ev.ID
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
	status, body, err := 200, []byte(`{"ok":true}`), error(nil)
	if answer != nil {
		status, body, err = answer(ev, n)
	}
	if err == nil && status/100 == 2 {
		a.mu.Lock()
		a.ok[ev.ID]++
		a.mu.Unlock()
	}
	return status, body, err
}

func (a *app) count(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sends[id]
}

func (a *app) okCount(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok[id]
}

func (a *app) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, v := range a.sends {
		n += v
	}
	return n
}

// outcomes counts what Observe was told.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) observe(s string) {
	o.mu.Lock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[s]++
	o.mu.Unlock()
}

func (o *outcomes) get(s string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[s]
}

// harness is one Queue with its fakes.
type harness struct {
	t    *testing.T
	st   *memStorage
	clk  *clock
	app  *app
	q    *Queue
	logs *observer.ObservedLogs
	outs *outcomes
}

const testPrefix = "oss_upload/events/h1"

// newHarness builds a Queue named instance on st and clk; mods adjust its
// Config.
func newHarness(t *testing.T, st *memStorage, clk *clock, instance string, mods ...func(*Config)) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{t: t, st: st, clk: clk, app: newApp(clk.Now), logs: logs, outs: &outcomes{}}
	cfg := Config{
		Storage:  st,
		Prefix:   testPrefix,
		Instance: instance,
		Now:      clk.Now,
		Logger:   zap.New(core),
		Send:     h.app.Send,
		RetryFor: time.Hour,
		Observe:  h.outs.observe,
		Tick:     time.Millisecond,
	}
	for _, m := range mods {
		m(&cfg)
	}
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q.rand = func() float64 { return 0.5 } // no jitter: exact backoff
	h.q = q
	return h
}

// event is a fresh event expiring in 2 h.
func (h *harness) event(id string) *Event {
	return &Event{ID: id, Body: []byte(`{"object":"` + id + `"}`), Object: "uploads/" + id,
		Header: map[string]string{"Content-Type": "application/json"}, Expires: h.clk.Now().Add(2 * time.Hour)}
}

// claim claims ev and requires it fresh.
func (h *harness) claim(ev *Event, first time.Duration) {
	h.t.Helper()
	c, err := h.q.Claim(context.Background(), ev, first)
	if err != nil || !c.Fresh {
		h.t.Fatalf("claim %s: fresh=%v err=%v", ev.ID, c.Fresh, err)
	}
}

// drive runs n steps of the queue, each followed by the attempts it
// started and then by dt on the clock.
func (h *harness) drive(n int, dt time.Duration) {
	for range n {
		h.q.step(context.Background())
		h.q.wg.Wait()
		h.clk.Advance(dt)
	}
}

// errorLogs are the error-level entries whose message contains substr.
func (h *harness) errorLogs(substr string) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, e := range h.logs.All() {
		if e.Level == zapcore.ErrorLevel && strings.Contains(e.Message, substr) {
			out = append(out, e)
		}
	}
	return out
}

// requireCause fails unless some error-level entry with substr carries a
// cause mentioning the injected failure.
func (h *harness) requireCause(substr string) {
	h.t.Helper()
	for _, e := range h.errorLogs(substr) {
		if cause, ok := e.ContextMap()["error"].(string); ok && strings.Contains(cause, errInjected.Error()) {
			return
		}
	}
	h.t.Fatalf("no error log %q with the injected cause; logs: %v", substr, messages(h.logs))
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, e.Level.String()+": "+e.Message)
	}
	return out
}

// record reads the stored record at key.
func (h *harness) record(key, id string) *Event {
	h.t.Helper()
	b, err := h.st.Load(context.Background(), key)
	if err != nil {
		h.t.Fatalf("load %s: %v", key, err)
	}
	ev, err := decode(b, id, Received, Delivered, Refused, Dead)
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}
