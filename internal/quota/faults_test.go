package quota

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// afterStore fails op once a Store has succeeded since it was installed
// (the confirming read of a round).
func afterStore(failing string) func(op, key string) error {
	var stored atomic.Bool
	return func(op, key string) error {
		if op == "store" || op == "quick" {
			stored.Store(true)
		}
		if op == failing && stored.Load() {
			return errInjected
		}
		return nil
	}
}

// A storage failure at any step of a reservation fails it with an error
// that says what failed (never a refusal, never a grant), and leaves
// nothing counted once storage works again; a failed quick write (split:
// the records of reservations written apart, as on the file system) as a
// failed Store.
func TestReserveStorageFailures(t *testing.T) {
	type fault struct {
		name  string
		fault func(op, key string) error
		says  string
	}
	for _, c := range []fault{
		{"list", failOn("list"), "quota: listing oss_upload/quota/test/"},
		{"load", failOn("load"), "quota: reading oss_upload/quota/test/"},
		{"store", failOn("store"), "quota: writing oss_upload/quota/test/"},
		{"confirming list", afterStore("list"), "quota: confirming what was written: quota: listing"},
		{"confirming load", afterStore("load"), "quota: confirming what was written: quota: reading"},
		{"split/quick", failOn("quick"), "quota: writing oss_upload/quota/test/"},
		{"split/list", failOn("list"), "quota: listing oss_upload/quota/test/"},
		{"split/confirming list", afterStore("list"), "quota: confirming what was written: quota: listing"},
		{"split/confirming load", afterStore("load"), "quota: confirming what was written: quota: reading"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, clk := newMem(), newClock()
			other := newLedger(t, st, clk, Config{Bytes: 1000})
			mustReserve(t, other, "k", 10, t0.Add(time.Hour))
			l := newLedger(t, st, clk, Config{Bytes: 1000})
			if strings.HasPrefix(c.name, "split/") {
				l = splitLedger(t, st, clk, Config{Bytes: 1000})
			}
			st.setFault(c.fault)
			_, err := l.Reserve(bg, "k", 100, t0.Add(time.Hour))
			var r *Refusal
			if err == nil || errors.As(err, &r) || !errors.Is(err, errInjected) || !strings.HasPrefix(err.Error(), c.says) {
				t.Fatalf("error %v; want one starting %q", err, c.says)
			}
			st.setFault(nil)
			for _, reader := range []*Ledger{newLedger(t, st, clk, Config{}), l} {
				if u, err := reader.Usage(bg, "k"); err != nil || u.Bytes != 10 {
					t.Fatalf("usage %+v, %v: want only the other's 10 bytes", u, err)
				}
			}
			if _, err := l.Reserve(bg, "k", 990, t0.Add(time.Hour)); err != nil {
				t.Fatalf("after the failure: %v", err)
			}
		})
	}
}

// vanishingStorage fails the first two Lists of a folder that has records
// with fs.ErrNotExist, as the file system's List does when a temporary
// file it walks is renamed away meanwhile; a folder exists when it has
// records.
type vanishingStorage struct {
	*memStorage
	lists map[string]int
}

func (v *vanishingStorage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	names, err := v.memStorage.List(ctx, dir, recursive)
	if v.lists[dir]++; err == nil && v.lists[dir] <= 2 {
		return nil, &fs.PathError{Op: "lstat", Path: dir + "/123456789", Err: fs.ErrNotExist}
	}
	return names, err
}

func (v *vanishingStorage) Exists(ctx context.Context, key string) bool {
	return v.memStorage.Exists(ctx, key) || len(v.memStorage.keys(key+"/")) > 0
}

// A List failing with "not found" while the folder exists is not an empty
// folder: the other instance's reservation still counts, in the first
// reading and in the confirming one.
func TestListNotFoundIsNoEmptyFolder(t *testing.T) {
	st, clk := newMem(), newClock()
	other := newLedger(t, st, clk, Config{Bytes: 100})
	mustReserve(t, other, "k", 60, t0.Add(time.Hour))
	l := newLedger(t, &vanishingStorage{st, map[string]int{}}, clk, Config{Bytes: 100})
	if _, err := l.Reserve(bg, "k", 60, t0.Add(time.Hour)); refusalOf(t, err).Used != 60 {
		t.Fatalf("refusal %v: want the other's 60 bytes counted", err)
	}
}

// A record that cannot be read is never taken for empty: the round fails
// and says which record.
func TestUnreadableRecord(t *testing.T) {
	st, clk := newMem(), newClock()
	other := newLedger(t, st, clk, Config{})
	mustReserve(t, other, "k", 10, t0.Add(time.Hour))
	key := st.keys(other.id)[0]
	l := newLedger(t, st, clk, Config{Bytes: 100})
	for _, c := range []struct{ content, says string }{
		{"{not json", "is unreadable: header"},
		{"", `is unreadable: header ""`},
		{"quota 1 5\nr 4102444800 5 1", "is unreadable: cut short"},
		{"quota 2 5\n", `header "quota 2 5", not "quota 1 <written>"`},
		{"quota 1 x\n", "header: strconv.ParseInt"},
		{"quota 1 5\nr 4102444800 -5 1\n", "negative"},
		{"quota 1 5\nr 4102444800 5\n", `line "r 4102444800 5"`},
		{"quota 1 5\nq 4102444800 5 1\n", `line "q 4102444800 5 1"`},
		{"quota 1 5\ns nope\n", `line "s nope"`},
		{"quota 1 5\ns nope 4102444800 1:5\n", "malformed reservation id"},
		{"quota 1 5\ns wabcdefghijkl 4102444800 1:-5\n", `settled reservation "1:-5"`},
	} {
		if err := st.Store(bg, key, []byte(c.content)); err != nil {
			t.Fatal(err)
		}
		_, err := l.Reserve(bg, "k", 1, t0.Add(time.Hour))
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), c.says) {
			t.Fatalf("record %s: error %v; want one naming %s and saying %q", c.content, err, key, c.says)
		}
		if _, err := l.Usage(bg, "k"); err == nil {
			t.Fatalf("record %s: usage read without error", c.content)
		}
	}
}

// A settled charge is never lost: writes that fail after it leave it in
// storage, and the next write carries it. A failed settle charges
// nothing (its reservation, released, stays released).
func TestSettledChargeSurvivesFailures(t *testing.T) {
	st, clk := newMem(), newClock()
	l := newLedger(t, st, clk, Config{Bytes: 1000})
	mustSettle(t, l, "k", "", 100)
	res := mustReserve(t, l, "k", 50, t0.Add(time.Hour))
	st.setFault(failOn("store"))
	if _, err := l.Settle(bg, "k", res.ID, 40); err == nil || !errors.Is(err, errInjected) {
		t.Fatalf("settle with storage failing: %v", err)
	}
	if _, err := l.Reserve(bg, "k", 1, t0.Add(time.Hour)); err == nil {
		t.Fatal("reserve with storage failing granted")
	}
	reader := newLedger(t, st, clk, Config{})
	if u, err := reader.Usage(bg, "k"); err != nil || u.Bytes != 150 || u.Uploads != 2 {
		t.Fatalf("usage in storage %+v, %v: want the charge and the reservation", u, err)
	}
	st.setFault(nil)
	mustReserve(t, l, "k", 5, t0.Add(time.Hour))
	if u, err := reader.Usage(bg, "k"); err != nil || u.Bytes != 105 || u.Uploads != 2 || u.Pending != 1 {
		t.Fatalf("usage in storage %+v, %v: want the 100-byte charge and the new 5-byte reservation", u, err)
	}
}

// A write that failed is done again by Sweep when no request comes.
func TestSweepRewritesAfterFailure(t *testing.T) {
	st, clk := newMem(), newClock()
	l := newLedger(t, st, clk, Config{})
	res := mustReserve(t, l, "k", 50, t0.Add(time.Hour))
	st.setFault(failOn("store"))
	if _, err := l.Settle(bg, "k", res.ID, 40); err == nil {
		t.Fatal("settle with storage failing succeeded")
	}
	st.setFault(nil)
	l.Sweep()
	reader := newLedger(t, st, clk, Config{})
	waitFor(t, "the sweep's rewrite", func() bool {
		u, err := reader.Usage(bg, "k")
		return err == nil && u.Pending == 0
	})
}

// Resets of one key are serialized by a storage lock; one that cannot
// take it fails and says so.
func TestResetLockFailure(t *testing.T) {
	st := newMem()
	l := newLedger(t, st, newClock(), Config{})
	st.setFault(failOn("lock"))
	if _, err := l.Reset(bg, "k"); err == nil || !strings.HasPrefix(err.Error(), "quota: locking quota_reset.oss_upload.quota.test.") {
		t.Fatalf("reset: %v", err)
	}
}

// A caller waiting in the queue leaves when its context ends; the caller
// whose round is in progress gets the round's outcome.
func TestCallerLeaves(t *testing.T) {
	st := newMem()
	l := newLedger(t, st, newClock(), Config{})
	holding, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.setFault(func(op, key string) error {
		if op == "list" {
			once.Do(func() { close(holding) })
			<-release // holds the round
		}
		return nil
	})
	first := make(chan error)
	go func() {
		_, err := l.Reserve(bg, "k", 1, t0.Add(time.Hour))
		first <- err
	}()
	<-holding
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	_, err := l.Reserve(ctx, "k", 1, t0.Add(time.Hour))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "quota: waiting for the ledger") {
		t.Fatalf("error %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if u, err := l.Usage(bg, "k"); err != nil || u.Pending != 1 {
		t.Fatalf("usage %+v, %v: want only the first reservation", u, err)
	}
}

// waitFor polls cond (bounded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
