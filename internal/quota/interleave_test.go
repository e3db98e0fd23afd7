package quota

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// Interleavings of two instances forced with storages that hold their
// operations: what the bound's argument relies on, step by step.

// gateStorage makes writes (Store, Delete) in rounds of n: none writes before all
// n of its round have arrived, and none returns before all n have
// written. The first round has every writer read before any writes; the
// second has every writer read again before any writes again. A round
// that waits more than 5 s is let through (so a change of behaviour fails
// the test, not hangs it) and counted in timeouts.
type gateStorage struct {
	certmagic.Storage
	n        int
	mu       sync.Mutex
	round    *gateRound
	timeouts int
}

type gateRound struct {
	arriving, writing      int
	allArrived, allWritten chan struct{}
}

func newGate(st certmagic.Storage, n int) *gateStorage { return &gateStorage{Storage: st, n: n} }

// pass counts one arrival at *left and waits until all have arrived at
// done.
func (g *gateStorage) pass(left *int, done chan struct{}) {
	g.mu.Lock()
	if *left--; *left == 0 {
		close(done)
	}
	g.mu.Unlock()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.mu.Lock()
		g.timeouts++
		g.mu.Unlock()
	}
}

func (g *gateStorage) Store(ctx context.Context, key string, value []byte) error {
	return g.write(func() error { return g.Storage.Store(ctx, key, value) })
}

func (g *gateStorage) Delete(ctx context.Context, key string) error {
	return g.write(func() error { return g.Storage.Delete(ctx, key) })
}

func (g *gateStorage) write(f func() error) error {
	g.mu.Lock()
	if g.round == nil || g.round.arriving == 0 {
		g.round = &gateRound{arriving: g.n, writing: g.n, allArrived: make(chan struct{}), allWritten: make(chan struct{})}
	}
	r := g.round
	g.mu.Unlock()
	g.pass(&r.arriving, r.allArrived)
	err := f()
	g.pass(&r.writing, r.allWritten)
	return err
}

// Two instances asking for the last room at the same moment, their writes
// landing before either confirms and their withdrawals after both
// confirmed: each sees the other's claim, so neither is granted (never
// both), and both claims are withdrawn: the room is still there for the
// next request. (Had one withdrawn before the other confirmed, the other
// would have been granted.) The same holds when the claims are written
// with a quick write (split), as on the file system.
func TestSimultaneousLastRoom(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(map[bool]string{false: "one record", true: "split"}[split], func(t *testing.T) {
			st := newMem()
			gate := newGate(st, 2)
			cfg := Config{Bytes: 100}
			a, b := newLedger(t, gate, nil, cfg), newLedger(t, gate, nil, cfg)
			if split {
				for _, l := range []*Ledger{a, b} {
					l.quick = func(ctx context.Context, key string, value []byte) error {
						return gate.write(func() error { return st.quick(ctx, key, value) })
					}
				}
			}
			simultaneousLastRoom(t, st, gate, a, b, cfg)
		})
	}
}

func simultaneousLastRoom(t *testing.T, st *memStorage, gate *gateStorage, a, b *Ledger, cfg Config) {
	errs := make(chan error, 2)
	for _, l := range []*Ledger{a, b} {
		go func() {
			_, err := l.Reserve(bg, "k", 60, time.Now().Add(time.Hour))
			errs <- err
		}()
	}
	for range 2 {
		if r := refusalOf(t, <-errs); r.Used != 60 || r.Asked != 60 {
			t.Fatalf("refusal %+v: want the other's 60 bytes used", r)
		}
	}
	if gate.timeouts > 0 {
		t.Fatalf("%d gate rounds timed out", gate.timeouts)
	}
	if len(st.keys(a.id))+len(st.keys(b.id)) > 0 {
		t.Fatalf("records left after everything was withdrawn: %v %v", st.keys(a.id), st.keys(b.id))
	}
	c := newLedger(t, st, nil, cfg) // a third instance, on the storage without gate
	if u, err := c.Usage(bg, "k"); err != nil || u.Bytes != 0 {
		t.Fatalf("usage %+v, %v: want both claims withdrawn", u, err)
	}
	if _, err := c.Reserve(bg, "k", 60, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("the room was lost: %v", err)
	}
}

// Two instances settling one reservation at the same moment (a policy used
// for two uploads) both see the other's settlement: neither counts as the
// reservation's upload, both uploads are charged as they fit, and the
// reservation is released once: another reservation of the same second
// still counts.
func TestSimultaneousSettle(t *testing.T) {
	st := newMem()
	gate := newGate(st, 2)
	cfg := Config{Bytes: 100}
	a, b := newLedger(t, gate, nil, cfg), newLedger(t, gate, nil, cfg)
	signer := newLedger(t, st, nil, cfg)
	expires := time.Now().Add(time.Hour)
	r1 := mustReserve(t, signer, "k", 50, expires)
	mustReserve(t, signer, "k", 40, expires)
	type answer struct {
		s   Settlement
		err error
	}
	answers := make(chan answer, 2)
	for _, l := range []*Ledger{a, b} {
		go func() {
			s, err := l.Settle(bg, "k", r1.ID, 30)
			answers <- answer{s, err}
		}()
	}
	for range 2 {
		if a := <-answers; a.err != nil || a.s.Reserved {
			t.Fatalf("settle: %+v, %v; want charged on its own", a.s, a.err)
		}
	}
	u, err := signer.Usage(bg, "k")
	if err != nil || u.Bytes != 100 || u.Uploads != 3 || u.Pending != 1 || gate.timeouts > 0 {
		t.Fatalf("usage %+v, %v (%d gate timeouts): want the 40-byte reservation and two uploads of 30", u, err, gate.timeouts)
	}
}

// hookStorage calls before (if set) ahead of each operation.
type hookStorage struct {
	certmagic.Storage
	before func(op string)
}

func (h *hookStorage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	h.before("list")
	return h.Storage.List(ctx, dir, recursive)
}

func (h *hookStorage) Store(ctx context.Context, key string, value []byte) error {
	h.before("store")
	return h.Storage.Store(ctx, key, value)
}

// When another instance's grant, confirmed while a round was writing,
// leaves no room for all of the round's grants, the round decides them
// again in order, each release at its op's place: a reservation made
// before an upload settled with its reservation does not get the room
// that upload frees, whose charge needs none.
func TestConfirmInOrder(t *testing.T) {
	st := newMem()
	cfg := Config{Bytes: 100}
	signer, other := newLedger(t, st, nil, cfg), newLedger(t, st, nil, cfg)
	r := mustReserve(t, signer, "k", 50, time.Now().Add(time.Hour))
	listed, release := make(chan struct{}), make(chan struct{})
	var lists, stores atomic.Int32
	hook := &hookStorage{Storage: st}
	hook.before = func(op string) {
		switch {
		case op == "list" && lists.Add(1) == 1: // the first round (a Usage) waits
			close(listed)
			<-release
		case op == "store" && stores.Add(1) == 1: // another instance grants meanwhile
			if _, err := other.Reserve(bg, "k", 20, time.Now().Add(time.Hour)); err != nil {
				t.Error(err)
			}
		}
	}
	l := newLedger(t, hook, nil, cfg)
	go func() { _, _ = l.Usage(bg, "k") }()
	<-listed
	queued := func(n int) func() bool {
		return func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, ks := range l.keys {
				return len(ks.queue) == n
			}
			return false
		}
	}
	reserved, settled := make(chan error, 1), make(chan error, 1)
	go func() { _, err := l.Reserve(bg, "k", 40, time.Now().Add(time.Hour)); reserved <- err }()
	waitFor(t, "the reserve to queue", queued(1))
	go func() {
		s, err := l.Settle(bg, "k", r.ID, 50)
		if err == nil && !s.Reserved {
			err = errors.New("not settled with its reservation")
		}
		settled <- err
	}()
	waitFor(t, "the settle to queue", queued(2))
	close(release)
	if err := <-settled; err != nil {
		t.Fatalf("settle: %v", err)
	}
	if ref := refusalOf(t, <-reserved); ref.Used != 70 {
		t.Fatalf("refusal %+v: want 70 used (the other's 20 and the reservation of 50)", ref)
	}
	if u, err := signer.Usage(bg, "k"); err != nil || u.Bytes != 70 {
		t.Fatalf("usage %+v, %v: want the other's 20 and the settled 50", u, err)
	}
}
