package quota

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// recordFiles lists the names of dir's files (records and anything else).
func recordFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// On the file system, a Ledger writes a key's reservations in a record of
// their own with its quick write, and its settlements in another with
// Store; another Ledger (another instance: its own FileStorage) sees each
// reservation as soon as Reserve returns, and the records, written either
// way, are files as FileStorage.Store writes them (0600, in folders 0700),
// with no temporary file left behind.
func TestQuickRecordsOnTheFileSystem(t *testing.T) {
	root := t.TempDir()
	cfg := Config{Bytes: 1000}
	a := newLedger(t, &certmagic.FileStorage{Path: root}, nil, cfg)
	b := newLedger(t, &certmagic.FileStorage{Path: root}, nil, cfg)
	if a.quick == nil || newLedger(t, newMem(), nil, cfg).quick != nil {
		t.Fatal("want quick writes on the file system only")
	}
	dir, _, _ := a.locate("k")
	folder := filepath.Join(root, filepath.FromSlash(dir))
	var ids []string
	sum := int64(0)
	for i, bytes := range []int64{100, 200} { // the record written new, then replaced
		ids = append(ids, mustReserve(t, a, "k", bytes, time.Now().Add(time.Hour)).ID)
		sum += bytes
		if u, err := b.Usage(bg, "k"); err != nil || u.Bytes != sum {
			t.Fatalf("reservation %d: the other ledger counts %+v, %v", i, u, err)
		}
	}
	if r := refusalOfReserve(t, b, 701); r.Used != 300 {
		t.Fatalf("refusal %+v: want a's 300 bytes counted", r)
	}
	mustSettle(t, b, "k", ids[0], 80)
	mustSettle(t, a, "k", ids[1], 150)
	if u, err := b.Usage(bg, "k"); err != nil || u.Bytes != 230 || u.Pending != 0 {
		t.Fatalf("usage %+v, %v: want the two uploads charged", u, err)
	}
	names := recordFiles(t, folder)
	if len(names) != 3 {
		t.Fatalf("records %v: want a's two (reservations, settlements) and b's one", names)
	}
	kinds := map[string]string{}
	for _, name := range names {
		if !validWriter(name) {
			t.Fatalf("%s in the key's folder is no record", name)
		}
		raw, err := os.ReadFile(filepath.Join(folder, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n")[1:] {
			kinds[name] += line[:1]
		}
	}
	claims := 0
	for name, k := range kinds {
		switch {
		case strings.Trim(k, "r") == "" && strings.HasPrefix(name, a.id):
			claims++
		case strings.ContainsAny(k, "r"):
			t.Fatalf("record %s holds %q: reservations next to other entries", name, k)
		}
	}
	if claims != 1 {
		t.Fatalf("records' kinds of lines %v: want one of a's holding reservations only", kinds)
	}

	// The same content written both ways: the same file.
	st := &certmagic.FileStorage{Path: root}
	content := []byte("quota 1 5\nr 4102444800 5 1\n")
	for _, key := range []string{"both/stored/wabcdefghijkl", "both/quick/wabcdefghijkl"} {
		write := st.Store
		if strings.Contains(key, "quick") {
			write = quickFileWriter(st)
		}
		for range 2 { // new, then replaced
			if err := write(bg, key, content); err != nil {
				t.Fatal(err)
			}
		}
	}
	var modes []os.FileMode
	for _, p := range []string{"both", "both/stored", "both/stored/wabcdefghijkl", "both/quick", "both/quick/wabcdefghijkl"} {
		info, err := os.Stat(st.Filename(p))
		if err != nil {
			t.Fatal(err)
		}
		modes = append(modes, info.Mode())
	}
	if modes[1] != modes[3] || modes[2] != modes[4] || modes[0] != os.ModeDir|0o700 || modes[2] != 0o600 {
		t.Fatalf("modes %v: want folders 0700 and files 0600 both ways", modes)
	}
	stored, err1 := st.Load(bg, "both/stored/wabcdefghijkl")
	quick, err2 := st.Load(bg, "both/quick/wabcdefghijkl")
	if err1 != nil || err2 != nil || !bytes.Equal(stored, content) || !bytes.Equal(quick, content) {
		t.Fatalf("read back %q, %v and %q, %v", stored, err1, quick, err2)
	}
	if names := recordFiles(t, st.Filename("both/quick")); len(names) != 1 {
		t.Fatalf("files %v: want the record alone", names)
	}
}

// refusalOfReserve reserves bytes for "k" and returns the refusal.
func refusalOfReserve(t *testing.T, l *Ledger, bytes int64) *Refusal {
	t.Helper()
	_, err := l.Reserve(bg, "k", bytes, time.Now().Add(time.Hour))
	return refusalOf(t, err)
}

// A quick write that fails on the file system (here, a file stands where
// the key's folder should be) fails the round as a failed Store does: an
// error naming the record, nothing granted, and nothing left counted once
// the file system works again.
func TestQuickWriteFailsOnTheFileSystem(t *testing.T) {
	root := t.TempDir()
	st := &certmagic.FileStorage{Path: root}
	l := newLedger(t, st, nil, Config{Bytes: 1000})
	dir, _, _ := l.locate("k")
	if err := st.Store(bg, dir, []byte("in the way")); err != nil {
		t.Fatal(err)
	}
	_, err := l.Reserve(bg, "k", 100, time.Now().Add(time.Hour))
	if err == nil || errors.As(err, new(*Refusal)) || !strings.HasPrefix(err.Error(), "quota: writing "+dir+"/"+l.id) {
		t.Fatalf("error %v; want a failure to write the record", err)
	}
	if err := st.Delete(bg, dir); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, l, "k", 1000, time.Now().Add(time.Hour))
	if u, err := newLedger(t, st, nil, Config{}).Usage(bg, "k"); err != nil || u.Bytes != 1000 {
		t.Fatalf("usage %+v, %v: want only the second reservation", u, err)
	}
}

// A machine crash may forget the reservations written without fsync
// (each record of reservations left as it was before, cut short, empty or
// gone), never a settled upload. An upload signed with a forgotten
// reservation is charged on its own, if it fits, and refused (deleted by
// the caller) if not: settled usage never exceeds the limits.
func TestCrashForgetsOnlyReservations(t *testing.T) {
	for _, c := range []struct {
		name  string
		leave func(before, now []byte) []byte
	}{
		{"as before", func(before, _ []byte) []byte { return before }},
		{"cut short", func(_, now []byte) []byte { return now[:len(now)-3] }},
		{"empty", func([]byte, []byte) []byte { return []byte{} }},
		{"gone", func([]byte, []byte) []byte { return nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, clk := newMem(), newClock()
			cfg := Config{Bytes: 1000}
			gone := splitLedger(t, st, clk, cfg)
			early := mustReserve(t, gone, "k", 300, t0.Add(time.Hour))
			mustSettle(t, gone, "k", early.ID, 300)
			fits := mustReserve(t, gone, "k", 200, t0.Add(time.Hour))
			big := mustReserve(t, gone, "k", 400, t0.Add(time.Hour))
			st.crash(c.leave)

			l := splitLedger(t, st, clk, cfg) // the instance after the restart
			u, err := l.Usage(bg, "k")
			if err != nil || u.Bytes != 300 || u.Uploads != 1 || u.Pending != 0 {
				t.Fatalf("usage %+v, %v: want the settled upload alone", u, err)
			}
			mustReserve(t, l, "k", 300, t0.Add(time.Hour)) // room the forgotten reservations held
			if s := mustSettle(t, l, "k", fits.ID, 200); s.Reserved {
				t.Fatal("a forgotten reservation settled as live")
			}
			if _, err := l.Settle(bg, "k", big.ID, 400); refusalOf(t, err).Reason != ReasonBytes {
				t.Fatalf("settle beyond the limit: %v", err)
			}
			if u, err := newLedger(t, st, clk, Config{}).Usage(bg, "k"); err != nil || u.Bytes != 800 || u.Uploads != 3 {
				t.Fatalf("usage %+v, %v: want 300 + 200 settled and 300 reserved", u, err)
			}
		})
	}
}

// On the file system, a record cut short (what a crash leaves of one
// written without fsync) counts nothing and fails no reading; readers
// delete it an hour after it was last modified. Where no record is
// written without fsync, one cut short is unreadable, as ever.
func TestCutShortRecord(t *testing.T) {
	root := t.TempDir()
	st := &certmagic.FileStorage{Path: root}
	gone := newLedger(t, st, nil, Config{})
	mustReserve(t, gone, "k", 100, time.Now().Add(time.Hour))
	dir, _, _ := gone.locate("k")
	names, err := st.List(bg, dir, false)
	if err != nil || len(names) != 1 {
		t.Fatalf("records %v, %v", names, err)
	}
	raw, err := st.Load(bg, names[0])
	if err != nil {
		t.Fatal(err)
	}
	file := st.Filename(names[0])
	if err := os.WriteFile(file, raw[:len(raw)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	l := newLedger(t, st, nil, Config{Bytes: 100})
	mustReserve(t, l, "k", 100, time.Now().Add(time.Hour))
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the record cut short was deleted at once: %v", err)
	}
	old := time.Now().Add(-time.Duration(deadAfter)*time.Second - time.Minute)
	if err := os.Chtimes(file, old, old); err != nil {
		t.Fatal(err)
	}
	if u, err := newLedger(t, st, nil, Config{}).Usage(bg, "k"); err != nil || u.Bytes != 100 {
		t.Fatalf("usage %+v, %v", u, err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the record cut short an hour ago is still there: %v", err)
	}

	mem := newMem()
	if err := mem.Store(bg, dir+"/wabcdefghijkl", raw[:len(raw)-1]); err != nil {
		t.Fatal(err)
	}
	if _, err := newLedger(t, mem, nil, Config{}).Usage(bg, "k"); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("a record cut short in a storage without quick writes: %v", err)
	}
}

// A Ledger's two records of a key (reservations, settlements) are each
// renewed half an hour after their last write, count once, and are
// deleted when nothing in them counts any more.
func TestSplitRecordsHousekeeping(t *testing.T) {
	st, clk := newMem(), newClock()
	l := splitLedger(t, st, clk, Config{})
	mustSettle(t, l, "k", "", 10)
	mustReserve(t, l, "k", 5, clk.Now().Add(time.Minute))
	first := st.keys(l.id)
	if len(first) != 2 {
		t.Fatalf("records %v: want one of reservations and one of settlements", first)
	}
	clk.Advance(31 * time.Minute)
	res := mustReserve(t, l, "k", 7, clk.Now().Add(time.Minute))
	keys := st.keys(l.id)
	if kept := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return !slices.Contains(first, k) }); len(keys) != 2 || len(kept) != 1 {
		t.Fatalf("records %v after %v: want the settlements' kept and the expired reservations' replaced", keys, first)
	}
	mustSettle(t, l, "k", res.ID, 6)
	if keys := st.keys(l.id); len(keys) != 3 {
		t.Fatalf("records %v: want the old settlements' and the new records of both", keys)
	}
	for _, reader := range []*Ledger{l, newLedger(t, st, clk, Config{})} {
		if u, err := reader.Usage(bg, "k"); err != nil || u.Bytes != 16 || u.Uploads != 2 || u.Pending != 0 {
			t.Fatalf("usage %+v, %v: want both uploads, each once", u, err)
		}
	}
	clk.Advance(25 * time.Hour)
	l.Sweep()
	waitFor(t, "the records' deletion", func() bool {
		if _, err := l.Usage(bg, "k"); err != nil {
			t.Fatal(err)
		}
		return len(st.keys(l.id)) == 0
	})
}
