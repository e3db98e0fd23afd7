package quota

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// tally is what the callers of a test were answered.
type tally struct {
	mu        sync.Mutex
	live      map[string]int64 // granted reservations not yet settled, by id
	charged   Usage            // bytes and uploads of the granted settles
	refused   int
	reservedN map[string]int // settles answered Reserved, by reservation id
}

func newTally() *tally { return &tally{live: map[string]int64{}, reservedN: map[string]int{}} }

// expected is the usage the answers add up to.
func (ta *tally) expected() Usage {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	u := Usage{Bytes: ta.charged.Bytes, Uploads: ta.charged.Uploads}
	for _, b := range ta.live {
		u.Pending++
		u.PendingBytes += b
	}
	u.Bytes += u.PendingBytes
	u.Uploads += u.Pending
	return u
}

// Many goroutines on two Ledgers sharing one storage (the file system, a
// real redis-server) reserve for one key at once until it is full: what
// they are granted never exceeds the limits, what the ledger counts is
// exactly what they were granted (withdrawn claims leave nothing behind),
// and the key ends up full: the last refusal is a real one.
func TestClusterReservesNeverExceed(t *testing.T) {
	limits := Limits{Bytes: 6000, Uploads: 70, Pending: 50}
	for _, s := range storages(t) {
		t.Run(s.name, func(t *testing.T) {
			cfg := Config{Prefix: "quota/reserve", Bytes: limits.Bytes, Uploads: limits.Uploads, Pending: limits.Pending}
			ledgers := []*Ledger{newLedger(t, s.open(), nil, cfg), newLedger(t, s.open(), nil, cfg)}
			ta := newTally()
			var wg sync.WaitGroup
			for g := range 24 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					l := ledgers[g%2]
					for misses := 0; misses < 3; {
						bytes := 1 + rng.Int64N(250)
						res, err := l.Reserve(bg, "alice", bytes, time.Now().Add(time.Hour))
						ta.mu.Lock()
						switch {
						case err == nil:
							ta.live[res.ID] = bytes
							misses = 0
						case errors.As(err, new(*Refusal)):
							ta.refused++
							misses++
						default:
							t.Error(err)
							misses = 3
						}
						ta.mu.Unlock()
					}
				})
			}
			wg.Wait()
			fillUp(t, ledgers, ta)
			checkTally(t, ledgers, ta, limits)
		})
	}
}

// fillUp reserves one byte at a time, alternating between ledgers, until
// a refusal: that refusal must be real (the limit is reached).
func fillUp(t *testing.T, ledgers []*Ledger, ta *tally) {
	t.Helper()
	for i := 0; ; i++ {
		res, err := ledgers[i%len(ledgers)].Reserve(bg, "alice", 1, time.Now().Add(time.Hour))
		if err != nil {
			r := refusalOf(t, err)
			if r.Used+r.Asked <= r.Limit {
				t.Fatalf("refused with room left: %+v", r)
			}
			return
		}
		ta.live[res.ID] = 1
	}
}

// checkTally checks that no limit is exceeded and that every ledger counts
// exactly what was answered.
func checkTally(t *testing.T, ledgers []*Ledger, ta *tally, limits Limits) {
	t.Helper()
	want := ta.expected()
	if want.Bytes > limits.Bytes || want.Uploads > limits.Uploads || want.Pending > limits.Pending {
		t.Fatalf("granted %+v exceeds the limits %+v", want, limits)
	}
	for i, l := range ledgers {
		u, err := l.Usage(bg, "alice")
		if err != nil {
			t.Fatal(err)
		}
		u.Limits, u.At = Limits{}, time.Time{}
		if u != want {
			t.Fatalf("ledger %d counts %+v; the answers add up to %+v", i, u, want)
		}
	}
	t.Logf("granted %+v (limits %+v) after %d refusals", want, limits, ta.refused)
}

// Goroutines on two Ledgers reserve, settle their reservations (for less,
// for more, twice on both ledgers at once) and settle uploads without
// reservation, all at once, ten times over: the limits hold, each
// reservation is used by at most one upload, and the ledger counts
// exactly what was answered.
func TestClusterReservesAndSettles(t *testing.T) {
	limits := Limits{Bytes: 20000, Uploads: 120, Pending: 12}
	for _, s := range storages(t) {
		t.Run(s.name, func(t *testing.T) {
			for run := range 10 {
				cfg := Config{Prefix: fmt.Sprintf("quota/mixed/%d", run), Bytes: limits.Bytes, Uploads: limits.Uploads, Pending: limits.Pending}
				ledgers := []*Ledger{newLedger(t, s.open(), nil, cfg), newLedger(t, s.open(), nil, cfg)}
				ta := newTally()
				var wg sync.WaitGroup
				for g := range 16 {
					wg.Go(func() { settler(t, uint64(run*16+g), ledgers, ta) })
				}
				wg.Wait()
				for id, n := range ta.reservedN {
					if n > 1 {
						t.Fatalf("run %d: reservation %s used by %d uploads", run, id, n)
					}
				}
				checkTally(t, ledgers, ta, limits)
			}
		})
	}
}

// settler is one goroutine of TestClusterReservesAndSettles.
func settler(t *testing.T, seed uint64, ledgers []*Ledger, ta *tally) {
	rng := rand.New(rand.NewPCG(seed, 11))
	settle := func(l *Ledger, id string, bytes int64) {
		s, err := l.Settle(bg, "alice", id, bytes)
		var r *Refusal
		if err != nil && !errors.As(err, &r) {
			t.Error(err)
			return
		}
		ta.mu.Lock()
		defer ta.mu.Unlock()
		delete(ta.live, id) // a settle with a live reservation uses it up, charged or not
		if err != nil {
			ta.refused++
			return
		}
		ta.charged.Bytes += bytes
		ta.charged.Uploads++
		if s.Reserved {
			ta.reservedN[id]++
		}
	}
	for range 12 {
		l := ledgers[rng.IntN(2)]
		bytes := 50 + rng.Int64N(400)
		res, err := l.Reserve(bg, "alice", bytes, time.Now().Add(time.Hour))
		if err != nil {
			if !errors.As(err, new(*Refusal)) {
				t.Error(err)
			}
			settle(l, "", 1+rng.Int64N(300)) // an STS upload
			continue
		}
		ta.mu.Lock()
		ta.live[res.ID] = bytes
		ta.mu.Unlock()
		switch rng.IntN(4) {
		case 0: // the same policy used twice, on both instances at once
			var both sync.WaitGroup
			for _, l := range ledgers {
				both.Go(func() { settle(l, res.ID, rng2(seed).Int64N(bytes+1)) })
			}
			both.Wait()
		case 1: // larger than reserved
			settle(l, res.ID, bytes+1+rng.Int64N(200))
		case 2:
			settle(ledgers[rng.IntN(2)], res.ID, rng.Int64N(bytes+1))
		} // case 3: never uploaded
	}
}

// rng2 is a generator of its own for a goroutine spawned by a settler.
func rng2(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano()))) }
