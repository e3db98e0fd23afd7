package quota

import (
	"errors"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A key whose own record has nothing left that counts is forgotten: Sweep
// deletes the record and the Ledger drops the key from memory.
func TestSweepForgetsExpiredKeys(t *testing.T) {
	st, clk := newMem(), newClock()
	l := newLedger(t, st, clk, Config{Window: time.Minute})
	mustReserve(t, l, "k", 5, t0.Add(10*time.Second))
	mustSettle(t, l, "k", "", 7)
	l.Sweep() // nothing expired yet: nothing to do
	if keys := st.keys(l.id); len(keys) != 1 {
		t.Fatalf("records %v", keys)
	}
	clk.Advance(2 * time.Minute)
	l.Sweep()
	waitFor(t, "the record's deletion", func() bool { return len(st.keys(l.id)) == 0 })
	waitFor(t, "the key to be forgotten", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.keys) == 0
	})
}

// A key without anything recorded is not kept in memory.
func TestRefusedKeysAreNotKept(t *testing.T) {
	l := newLedger(t, newMem(), newClock(), Config{Bytes: 10})
	for range 3 {
		if _, err := l.Reserve(bg, "big", 11, t0.Add(time.Minute)); err == nil {
			t.Fatal("granted")
		}
	}
	waitFor(t, "the key to be forgotten", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.keys) == 0
	})
}

// The record of a writer that stopped (a reload, a crash) counts until its
// content expires; readers then skip it, and delete it an hour after its
// last write.
func TestDeadWriterRecords(t *testing.T) {
	st, clk := newMem(), newClock()
	gone := newLedger(t, st, clk, Config{Window: time.Minute})
	mustSettle(t, gone, "k", "", 9)
	l := newLedger(t, st, clk, Config{Window: time.Minute})
	if u, _ := l.Usage(bg, "k"); u.Bytes != 9 {
		t.Fatalf("usage %+v: the stopped writer's charge should count", u)
	}
	clk.Advance(2 * time.Minute)
	if u, _ := l.Usage(bg, "k"); u.Bytes != 0 || len(st.keys(gone.id)) != 1 {
		t.Fatalf("usage %+v, records %v: expired, kept until an hour after its write", u, st.keys(gone.id))
	}
	clk.Advance(time.Hour)
	if _, err := l.Usage(bg, "k"); err != nil || len(st.keys(gone.id)) != 0 {
		t.Fatalf("%v; records %v: want the dead record deleted", err, st.keys(gone.id))
	}
}

// A record last written over half an hour ago is left for a new one, so
// that it is never written while a reader may delete it (an hour after its
// last write, once all it holds has expired): what it holds still counts,
// once.
func TestRecordsRenewed(t *testing.T) {
	st, clk := newMem(), newClock()
	l := newLedger(t, st, clk, Config{})
	if _, err := l.Settle(bg, "k", "", 10); err != nil { // counts for 24 h
		t.Fatal(err)
	}
	first := st.keys(l.id)
	clk.Advance(30 * time.Minute)
	mustReserve(t, l, "k", 5, clk.Now().Add(time.Minute))
	if keys := st.keys(l.id); !reflect.DeepEqual(keys, first) {
		t.Fatalf("records %v, want still %v after half an hour", keys, first)
	}
	clk.Advance(31 * time.Minute)
	res := mustReserve(t, l, "k", 7, clk.Now().Add(time.Minute))
	keys := st.keys(l.id)
	if len(keys) != 2 || !slices.Contains(keys, first[0]) {
		t.Fatalf("records %v: want %v kept and a new one", keys, first)
	}
	if name := path.Base(slices.DeleteFunc(keys, func(k string) bool { return k == first[0] })[0]); !strings.HasPrefix(res.ID, name+".") {
		t.Fatalf("reservation %s is not of the new record %s", res.ID, name)
	}
	for _, reader := range []*Ledger{l, newLedger(t, st, clk, Config{})} {
		if u, err := reader.Usage(bg, "k"); err != nil || u.Bytes != 17 || u.Uploads != 2 {
			t.Fatalf("usage %+v, %v: want the charge and the live reservation, each once", u, err)
		}
	}
}

// A record left for a new one when all it held has expired is deleted by
// its writer.
func TestExpiredRecordsRenewedAway(t *testing.T) {
	st, clk := newMem(), newClock()
	l := newLedger(t, st, clk, Config{})
	mustReserve(t, l, "k", 5, clk.Now().Add(time.Minute))
	first := st.keys(l.id)
	clk.Advance(31 * time.Minute)
	mustReserve(t, l, "k", 5, clk.Now().Add(time.Minute))
	if keys := st.keys(l.id); len(keys) != 1 || keys[0] == first[0] {
		t.Fatalf("records %v: want only a new one (the first was %v)", keys, first)
	}
}

// Purge deletes, below the prefix, the records of every key that nothing
// counts in any more and that were last written an hour ago; it keeps the
// others.
func TestPurge(t *testing.T) {
	st, clk := newMem(), newClock()
	gone := newLedger(t, st, clk, Config{Window: time.Minute})
	mustReserve(t, gone, "idle", 5, clk.Now().Add(time.Minute))
	mustSettle(t, gone, "busy", "", 5)
	l := newLedger(t, st, clk, Config{Window: time.Hour})
	clk.Advance(59 * time.Minute)
	mustSettle(t, l, "busy", "", 5) // counts for another hour
	if err := st.Store(bg, testPrefix+"/unreadable/w"+strings.Repeat("a", 12), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	l.Purge(bg)
	if keys := st.keys(gone.id); len(keys) != 2 {
		t.Fatalf("records %v: nothing is an hour old yet", keys)
	}
	clk.Advance(2 * time.Minute)
	l.Purge(bg)
	if keys := st.keys(gone.id); len(keys) != 0 {
		t.Fatalf("records %v: want the stopped ledger's purged", keys)
	}
	if keys := st.keys(l.id); len(keys) != 1 || len(st.keys("unreadable")) != 1 {
		t.Fatalf("records %v and %v: want the live one and the unreadable one kept", keys, st.keys("unreadable"))
	}
}

// Names in a key's folder that are no writer's (the temporary files of
// the file system's atomic writes) are not read.
func TestForeignNamesIgnored(t *testing.T) {
	st, clk := newMem(), newClock()
	l := newLedger(t, st, clk, Config{Bytes: 10})
	dir, _, _ := l.locate("k")
	for _, name := range []string{"1234567890", "W" + strings.Repeat("a", 12), "wABCDEFGHIJKL", "w" + strings.Repeat("a", 13)} {
		if err := st.Store(bg, dir+"/"+name, []byte("garbage")); err != nil {
			t.Fatal(err)
		}
	}
	mustReserve(t, l, "k", 10, t0.Add(time.Minute))
}

// A reservation id has one spelling; Settle refuses others as malformed
// and reads an id settled under another key as no reservation.
func TestReservationIDs(t *testing.T) {
	st, clk := newMem(), newClock()
	l := newLedger(t, st, clk, Config{})
	res := mustReserve(t, l, "k", 1234, t0.Add(time.Minute))
	r, err := parseID(res.ID)
	if err != nil || r.String() != res.ID || !strings.HasPrefix(r.writer, l.id) || r.bytes != 1234 || r.expiry != t0.Unix()+61 {
		t.Fatalf("id %q parsed as %+v, %v", res.ID, r, err)
	}
	if len(res.ID) > 64 || strings.Trim(res.ID, "abcdefghijklmnopqrstuvwxyz0123456789.") != "" {
		t.Fatalf("id %q is not [0-9a-z.]{,64}", res.ID)
	}
	parts := strings.Split(res.ID, ".")
	for _, bad := range []string{
		"x", res.ID + ".1", strings.Join(parts[:4], "."),
		strings.ToUpper(res.ID),
		strings.Join(append([]string{parts[0], "0" + parts[1]}, parts[2:]...), "."),
		strings.Join(append([]string{parts[0], parts[1], "+" + parts[2]}, parts[3:]...), "."),
		strings.Join(append([]string{parts[0], "zzzzzzzzz"}, parts[2:]...), "."), // tag beyond 32 bits
		strings.Join(append([]string{"v" + parts[0][1:]}, parts[1:]...), "."),
	} {
		if _, err := l.Settle(bg, "k", bad, 1); !errors.Is(err, ErrMalformedID) {
			t.Errorf("settle with id %q: %v", bad, err)
		}
	}
	s, err := l.Settle(bg, "other", res.ID, 1)
	if err != nil || s.Reserved {
		t.Fatalf("settled under another key: %+v, %v", s, err)
	}
	if s, err := l.Settle(bg, "k", res.ID, 1); err != nil || !s.Reserved {
		t.Fatalf("settled under its key: %+v, %v", s, err)
	}
}

// New refuses configurations it cannot keep, and fills in defaults.
func TestNewConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		says string
	}{
		{Config{Prefix: "p"}, "no storage"},
		{Config{Storage: newMem()}, `prefix ""`},
		{Config{Storage: newMem(), Prefix: "/p"}, `prefix "/p"`},
		{Config{Storage: newMem(), Prefix: "p/"}, `prefix "p/"`},
		{Config{Storage: newMem(), Prefix: "p", Bytes: -1}, "negative limit"},
		{Config{Storage: newMem(), Prefix: "p", Window: time.Millisecond}, "shorter than a second"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("New(%+v): %v; want %q", c.cfg, err, c.says)
		}
	}
	l, err := New(Config{Storage: newMem(), Prefix: "p"})
	if err != nil || l.window != int64(DefaultWindow/time.Second) || l.slot != 24*60 {
		t.Fatalf("defaults: %+v, %v", l, err)
	}
	if _, err := l.Reserve(bg, "", 1, time.Now().Add(time.Minute)); err == nil {
		t.Fatal("empty key accepted")
	}
	if _, err := l.Reserve(bg, "k", -1, time.Now().Add(time.Minute)); err == nil {
		t.Fatal("negative reservation accepted")
	}
	if _, err := l.Reserve(bg, "k", 1, time.Now().Add(-time.Second)); err == nil || !strings.Contains(err.Error(), "already expired") {
		t.Fatalf("reservation expired a second ago: %v", err)
	}
	if _, err := l.Settle(bg, "k", "", -1); err == nil {
		t.Fatal("negative upload accepted")
	}
}
