package quota

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// t0 is the test clock's start: not on a whole second.
var t0 = time.Date(2030, 1, 1, 0, 10, 0, 250_000_000, time.UTC)

// clock is a manually advanced clock, in nanoseconds since t0.
type clock struct{ since atomic.Int64 }

func newClock() *clock { return &clock{} }

func (c *clock) Now() time.Time { return t0.Add(time.Duration(c.since.Load())) }

func (c *clock) Advance(d time.Duration) { c.since.Add(int64(d)) }

// memStorage is a certmagic.Storage in memory, locks included (a mutex
// each), with fault injection.
type memStorage struct {
	mu    sync.Mutex
	files map[string][]byte
	locks sync.Map                   // lock name: *sync.Mutex
	fault func(op, key string) error // an error to fail op on key with
	// unsynced holds, for each key quick wrote since its last Store or
	// Delete, what a crash leaves of it (nil: no file).
	unsynced map[string][]byte
}

var _ certmagic.Storage = (*memStorage)(nil)

var errInjected = errors.New("injected storage failure")

func newMem() *memStorage {
	return &memStorage{files: map[string][]byte{}}
}

// setFault installs f (nil: none).
func (s *memStorage) setFault(f func(op, key string) error) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// failOn fails every op among ops.
func failOn(ops ...string) func(op, key string) error {
	return func(op, key string) error {
		for _, o := range ops {
			if o == op {
				return fmt.Errorf("%s %s: %w", op, key, errInjected)
			}
		}
		return nil
	}
}

func (s *memStorage) check(op, key string) error {
	if s.fault != nil {
		return s.fault(op, key)
	}
	return nil
}

func (s *memStorage) Store(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("store", key); err != nil {
		return err
	}
	s.files[key] = append([]byte(nil), value...)
	delete(s.unsynced, key)
	return nil
}

// quick is a Ledger's quick write (see Ledger.quick) on s: a Store that
// a crash may take back.
func (s *memStorage) quick(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("quick", key); err != nil {
		return err
	}
	if _, ok := s.unsynced[key]; !ok {
		if s.unsynced == nil {
			s.unsynced = map[string][]byte{}
		}
		s.unsynced[key] = s.files[key]
	}
	s.files[key] = append([]byte(nil), value...)
	return nil
}

// crash is a machine crash: each file quick wrote since its last Store is
// left by leave, given what it was before (nil: no file) and is.
func (s *memStorage) crash(leave func(before, now []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, before := range s.unsynced {
		if left := leave(before, s.files[key]); left != nil {
			s.files[key] = left
		} else {
			delete(s.files, key)
		}
	}
	s.unsynced = nil
}

func (s *memStorage) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("load", key); err != nil {
		return nil, err
	}
	v, ok := s.files[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return append([]byte(nil), v...), nil
}

func (s *memStorage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("delete", key); err != nil {
		return err
	}
	found := false
	for k := range s.files {
		if k == key || strings.HasPrefix(k, key+"/") {
			delete(s.files, k)
			delete(s.unsynced, k)
			found = true
		}
	}
	if !found {
		return fs.ErrNotExist
	}
	return nil
}

func (s *memStorage) Exists(_ context.Context, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.files[key]
	return ok
}

func (s *memStorage) List(_ context.Context, dir string, recursive bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("list", dir); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for k := range s.files {
		rest, ok := strings.CutPrefix(k, dir+"/")
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 && !recursive {
			rest = rest[:i]
		}
		seen[dir+"/"+rest] = true
	}
	if len(seen) == 0 {
		return nil, fs.ErrNotExist
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStorage) Stat(_ context.Context, key string) (certmagic.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.files[key]
	if !ok {
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	return certmagic.KeyInfo{Key: key, Size: int64(len(v)), IsTerminal: true}, nil
}

func (s *memStorage) Lock(_ context.Context, name string) error {
	s.mu.Lock()
	err := s.check("lock", name)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	m, _ := s.locks.LoadOrStore(name, new(sync.Mutex))
	m.(*sync.Mutex).Lock()
	return nil
}

func (s *memStorage) Unlock(_ context.Context, name string) error {
	if m, ok := s.locks.Load(name); ok {
		m.(*sync.Mutex).Unlock()
	}
	return nil
}

// keys lists the stored keys containing substr.
func (s *memStorage) keys(substr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.DeleteFunc(slices.Sorted(maps.Keys(s.files)), func(k string) bool { return !strings.Contains(k, substr) })
}

const testPrefix = "oss_upload/quota/test"

// newLedger builds a Ledger on st with clk and the limits and window of
// cfg (its other fields are filled in).
func newLedger(t testing.TB, st certmagic.Storage, clk *clock, cfg Config) *Ledger {
	t.Helper()
	cfg.Storage = st
	if cfg.Prefix == "" {
		cfg.Prefix = testPrefix
	}
	if clk != nil {
		cfg.Now = clk.Now
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// splitLedger is newLedger, with the records of reservations written by
// st's quick write, as a Ledger on the file system writes them.
func splitLedger(t testing.TB, st *memStorage, clk *clock, cfg Config) *Ledger {
	t.Helper()
	l := newLedger(t, st, clk, cfg)
	l.quick = st.quick
	return l
}

// mustReserve reserves bytes for key until expires, failing t if refused.
func mustReserve(t testing.TB, l *Ledger, key string, bytes int64, expires time.Time) Reservation {
	t.Helper()
	res, err := l.Reserve(bg, key, bytes, expires)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustSettle settles an upload of bytes for key with id, failing t if
// refused.
func mustSettle(t testing.TB, l *Ledger, key, id string, bytes int64) Settlement {
	t.Helper()
	s, err := l.Settle(bg, key, id, bytes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refusalOf returns err's *Refusal, failing t when err is something else.
func refusalOf(t testing.TB, err error) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return r
}

var bg = context.Background()
