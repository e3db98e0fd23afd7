package quota

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// propertyCase is one configuration the generated sequences run against.
type propertyCase struct {
	name    string
	limits  Limits
	window  time.Duration
	ledgers int // Ledgers sharing the storage; each op goes to one at random
}

var propertyCases = []propertyCase{
	{"every limit, one ledger", Limits{Bytes: 1000, Uploads: 8, Pending: 3}, time.Minute, 1},
	{"every limit, two ledgers", Limits{Bytes: 1000, Uploads: 8, Pending: 3}, time.Minute, 2},
	{"bytes only, three ledgers", Limits{Bytes: 600}, 90 * time.Second, 3},
	{"uploads and pending", Limits{Uploads: 5, Pending: 2}, 2 * time.Minute, 2},
	{"no limits", Limits{}, 30 * time.Second, 1},
}

// Generated sequences of reserves, settles (of live, used, expired,
// foreign and no reservations, for less or more than reserved), resets,
// usage readings and clock moves, on several keys and Ledgers sharing one
// storage: every answer (grants, refusals with their reason, limit, used,
// asked and retry time, usage) is the model's, and after every step no key
// holds more than its limits.
//
// Ledgers whose records of reservations are written apart (split, as on
// the file system) answer the same, alone and next to Ledgers that keep
// one record (mixed).
func TestLedgerMatchesModel(t *testing.T) {
	for _, records := range []struct {
		name  string
		split func(i int) bool
	}{
		{"one record", func(int) bool { return false }},
		{"split", func(int) bool { return true }},
		{"mixed", func(i int) bool { return i%2 == 1 }},
	} {
		for _, pc := range propertyCases {
			if records.name == "mixed" && pc.ledgers < 2 {
				continue
			}
			t.Run(records.name+"/"+pc.name, func(t *testing.T) {
				for seed := range uint64(60) {
					runSequence(t, pc, records.split, seed, 120)
				}
			})
		}
	}
}

type issued struct{ key, id string }

func runSequence(t *testing.T, pc propertyCase, split func(int) bool, seed uint64, steps int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b9))
	st, clk := newMem(), newClock()
	cfg := Config{Bytes: pc.limits.Bytes, Uploads: pc.limits.Uploads, Pending: pc.limits.Pending, Window: pc.window}
	ledgers := make([]*Ledger, pc.ledgers)
	for i := range ledgers {
		if ledgers[i] = newLedger(t, st, clk, cfg); split(i) {
			ledgers[i] = splitLedger(t, st, clk, cfg)
		}
	}
	m := newModel(pc.limits, pc.window)
	keys := []string{"alice", "bob", "uploads/carol/"}
	var ids []issued
	size := max(pc.limits.Bytes/3, 100)
	var log []string
	fatalf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d, after:\n%v\n%s", seed, log, fmt.Sprintf(format, args...))
	}

	for step := range steps {
		l := ledgers[rng.IntN(len(ledgers))]
		k := keys[rng.IntN(len(keys))]
		at := clk.Now()
		switch x := rng.IntN(100); {
		case x < 12:
			d := []time.Duration{300 * time.Millisecond, time.Second, 7 * time.Second, pc.window / 3, pc.window + pc.window/Slots}[rng.IntN(5)]
			clk.Advance(d)
			log = append(log, fmt.Sprintf("advance %v", d))
		case x < 55:
			bytes := rng.Int64N(size)
			if rng.IntN(20) == 0 {
				bytes *= 4 // may exceed the bytes limit alone: never fits
			}
			expires := at.Add(time.Duration(rng.Int64N(int64(40 * time.Second))))
			log = append(log, fmt.Sprintf("%d reserve %s %d until +%v", step, k, bytes, expires.Sub(at)))
			expiry, want := m.reserve(k, at, bytes, expires)
			res, err := l.Reserve(bg, k, bytes, expires)
			if want != nil {
				sameRefusal(t, err, want, fatalf)
				break
			}
			if err != nil {
				fatalf("reserve: %v, want a grant", err)
			}
			m.granted(k, res.ID, bytes, expiry)
			ids = append(ids, issued{k, res.ID})
			if res.Bytes != bytes || res.Expires.Unix() != expiry || res.Usage != m.usage(k, at) {
				fatalf("reservation %+v, want %d bytes until %d and usage %+v", res, bytes, expiry, m.usage(k, at))
			}
		case x < 85:
			id, bytes := "", rng.Int64N(size)
			if len(ids) > 0 && rng.IntN(4) > 0 {
				is := ids[rng.IntN(len(ids))]
				if id = is.id; rng.IntN(4) > 0 {
					k = is.key // mostly under its own key
				}
			}
			log = append(log, fmt.Sprintf("%d settle %s %q %d", step, k, id, bytes))
			reserved, want := m.settle(k, id, at, bytes)
			s, err := l.Settle(bg, k, id, bytes)
			if want != nil {
				sameRefusal(t, err, want, fatalf)
				break
			}
			if err != nil || s.Reserved != reserved || s.Usage != m.usage(k, at) {
				fatalf("settle: %+v, %v; want reserved %v and usage %+v", s, err, reserved, m.usage(k, at))
			}
		case x < 90:
			log = append(log, fmt.Sprintf("%d reset %s", step, k))
			m.reset(k, at)
			if u, err := l.Reset(bg, k); err != nil || u != m.usage(k, at) {
				fatalf("reset: %+v, %v; want %+v", u, err, m.usage(k, at))
			}
		default:
			if u, err := l.Usage(bg, k); err != nil || u != m.usage(k, at) {
				fatalf("usage: %+v, %v; want %+v", u, err, m.usage(k, at))
			}
		}
		checkAll(t, ledgers[rng.IntN(len(ledgers))], m, keys, clk.Now(), fatalf)
	}
}

// sameRefusal fails unless err is the model's refusal want.
func sameRefusal(t *testing.T, err error, want *Refusal, fatalf func(string, ...any)) {
	t.Helper()
	if got := refusalOf(t, err); !reflect.DeepEqual(got, want) {
		fatalf("refused with %+v, want %+v", got, want)
	}
}

// checkAll reads every key's usage through l: it is the model's, within
// the limits.
func checkAll(t *testing.T, l *Ledger, m *model, keys []string, at time.Time, fatalf func(string, ...any)) {
	t.Helper()
	for _, k := range keys {
		u, err := l.Usage(bg, k)
		if err != nil || u != m.usage(k, at) {
			fatalf("usage of %s: %+v, %v; want %+v", k, u, err, m.usage(k, at))
		}
		lim := m.limits
		if lim.Bytes > 0 && u.Bytes > lim.Bytes || lim.Uploads > 0 && u.Uploads > lim.Uploads || lim.Pending > 0 && u.Pending > lim.Pending {
			fatalf("usage of %s %+v exceeds the limits", k, u)
		}
	}
}
