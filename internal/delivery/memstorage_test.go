package delivery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// memStorage is a certmagic.Storage in memory, locks included, with fault
// injection and an operation log.
type memStorage struct {
	mu      sync.Mutex
	files   map[string][]byte
	orphans map[string][]byte          // left by a flat Delete: loadable, not listed
	locks   map[string]chan struct{}   // held locks; closed on Unlock
	flat    bool                       // Delete removes only the named key (keeps a directory's keys)
	fault   func(op, key string) error // an error to fail op on key with
	stall   func(op, key string) bool  // op on key blocks until its ctx ends
	onOp    func(op, key string)       // called at the start of each op
	ops     []string                   // "op key", in order
}

var _ certmagic.Storage = (*memStorage)(nil)

var errInjected = errors.New("injected storage failure")

func newMem() *memStorage {
	return &memStorage{
		files:   map[string][]byte{},
		orphans: map[string][]byte{},
		locks:   map[string]chan struct{}{},
	}
}

// setFault installs f (nil: none).
func (s *memStorage) setFault(f func(op, key string) error) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// setStall installs f (nil: none).
func (s *memStorage) setStall(f func(op, key string) bool) {
	s.mu.Lock()
	s.stall = f
	s.mu.Unlock()
}

// failOn fails every op among ops on keys containing substr.
func failOn(substr string, ops ...string) func(op, key string) error {
	return func(op, key string) error {
		for _, o := range ops {
			if o == op && strings.Contains(key, substr) {
				return fmt.Errorf("%s %s: %w", op, key, errInjected)
			}
		}
		return nil
	}
}

// wipe forgets every key, as a storage that restarted empty.
func (s *memStorage) wipe() {
	s.mu.Lock()
	s.files, s.orphans = map[string][]byte{}, map[string][]byte{}
	s.mu.Unlock()
}

// resetOps clears the operation log.
func (s *memStorage) resetOps() {
	s.mu.Lock()
	s.ops = nil
	s.mu.Unlock()
}

// count is how many logged ops are op on a key containing substr.
func (s *memStorage) count(op, substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.ops {
		k, key, _ := strings.Cut(o, " ")
		if k == op && strings.Contains(key, substr) {
			n++
		}
	}
	return n
}

// has reports whether key holds a value (listed or not).
func (s *memStorage) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, a := s.files[key]
	_, b := s.orphans[key]
	return a || b
}

// keys lists the listed keys below prefix, sorted.
func (s *memStorage) keys(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.files {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// begin logs an op and applies the injected stall or fault.
func (s *memStorage) begin(ctx context.Context, op, key string) error {
	s.mu.Lock()
	s.ops = append(s.ops, op+" "+key)
	fault, stall, onOp := s.fault, s.stall, s.onOp
	s.mu.Unlock()
	if onOp != nil {
		onOp(op, key)
	}
	if stall != nil && stall(op, key) {
		<-ctx.Done()
		return ctx.Err()
	}
	if fault != nil {
		if err := fault(op, key); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *memStorage) Lock(ctx context.Context, name string) error {
	if err := s.begin(ctx, "lock", name); err != nil {
		return err
	}
	for {
		s.mu.Lock()
		held, ok := s.locks[name]
		if !ok {
			s.locks[name] = make(chan struct{})
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *memStorage) Unlock(ctx context.Context, name string) error {
	if err := s.begin(ctx, "unlock", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held, ok := s.locks[name]
	if !ok {
		return fmt.Errorf("unlock %s: not locked", name)
	}
	close(held)
	delete(s.locks, name)
	return nil
}

// locked reports whether name is held.
func (s *memStorage) locked(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.locks[name]
	return ok
}

func (s *memStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := s.begin(ctx, "store", key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[key] = append([]byte(nil), value...)
	delete(s.orphans, key)
	return nil
}

func (s *memStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "load", key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.files[key]; ok {
		return append([]byte(nil), v...), nil
	}
	if v, ok := s.orphans[key]; ok {
		return append([]byte(nil), v...), nil
	}
	return nil, fmt.Errorf("load %s: %w", key, fs.ErrNotExist)
}

// Delete removes key and, unless flat, every key below it; a flat storage
// keeps the keys below as orphans, loadable but no longer listed.
func (s *memStorage) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete", key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, key)
	delete(s.orphans, key)
	for k, v := range s.files {
		if strings.HasPrefix(k, key+"/") {
			delete(s.files, k)
			if s.flat {
				s.orphans[k] = v
			}
		}
	}
	if !s.flat {
		for k := range s.orphans {
			if strings.HasPrefix(k, key+"/") {
				delete(s.orphans, k)
			}
		}
	}
	return nil
}

func (s *memStorage) Exists(ctx context.Context, key string) bool {
	if s.begin(ctx, "exists", key) != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[key]; ok {
		return true
	}
	for k := range s.files {
		if strings.HasPrefix(k, key+"/") {
			return true
		}
	}
	return false
}

func (s *memStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if err := s.begin(ctx, "list", prefix); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for k := range s.files {
		rest, ok := strings.CutPrefix(k, prefix+"/")
		if !ok {
			continue
		}
		parts := strings.Split(rest, "/")
		if !recursive {
			add(prefix + "/" + parts[0])
			continue
		}
		for i := range parts {
			add(prefix + "/" + strings.Join(parts[:i+1], "/"))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list %s: %w", prefix, fs.ErrNotExist)
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := s.begin(ctx, "stat", key); err != nil {
		return certmagic.KeyInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.files[key]; ok {
		return certmagic.KeyInfo{Key: key, Size: int64(len(v)), IsTerminal: true, Modified: time.Time{}}, nil
	}
	for k := range s.files {
		if strings.HasPrefix(k, key+"/") {
			return certmagic.KeyInfo{Key: key}, nil
		}
	}
	return certmagic.KeyInfo{}, fmt.Errorf("stat %s: %w", key, fs.ErrNotExist)
}
