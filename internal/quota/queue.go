package quota

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
)

type opKind uint8

const (
	opReserve opKind = iota
	opSettle
	opUsage // alone in its round
	opReset // alone in its round, under the key's storage lock
	opSweep // alone in its round; nobody waits for it
)

// maxBatch bounds the reserves and settles one round decides.
const maxBatch = 256

// op is one call waiting for, or decided in, a round of its key.
type op struct {
	kind   opKind
	tag    uint32 // the key's tag
	bytes  int64  // reserved or settled
	expiry int64  // of a reservation, Unix seconds
	id     resID  // the reservation granted, or the one settled (writer "" for none)

	done     chan struct{}
	canceled atomic.Bool // the caller left before the round took it

	// Results, written by the round before done is closed.
	granted  bool  // a reservation granted or an upload charged
	released bool  // a settle that released its live reservation
	reserved bool  // ... and was charged as its upload (false if another settled it too)
	refusal  error // a *Refusal, nil when granted
	err      error // a failure
	usage    Usage
}

// keyState is what a Ledger keeps of one key. queue and running are
// guarded by Ledger.mu; the rest only the round in progress (running)
// reads or writes, and Sweep between rounds.
type keyState struct {
	dir     string
	queue   []*op
	running bool

	// claims is the own record of reservations; kept that of charges,
	// credits and settlements: the same record unless the Ledger splits
	// them (see Ledger.quick).
	claims, kept *ownRecord

	cache   map[string]cachedRecord
	memo    overlapMemo
	others  map[string]*state // the other writers' records as last read; nil before
	readErr error             // the last reading's failure
}

// ownRecord is a record of the Ledger's own, which it alone writes.
type ownRecord struct {
	writer string // its name
	st     *state // as it should be in storage
	stored bool   // it exists in storage (or may, after a failure)
	dirty  bool   // storage may hold something else than st: write it again
	quick  bool   // written with Ledger.quick: it holds reservations only
}

// newKeyState is the state of a key the Ledger has nothing of yet.
func (l *Ledger) newKeyState(dir string) *keyState {
	ks := &keyState{dir: dir, cache: map[string]cachedRecord{}}
	ks.claims = &ownRecord{writer: l.newWriter(), st: newState(), quick: l.quick != nil}
	ks.kept = ks.claims
	if l.quick != nil {
		ks.kept = &ownRecord{writer: l.newWriter(), st: newState()}
	}
	return ks
}

// own is ks's own records, each once.
func (ks *keyState) own() []*ownRecord {
	if ks.kept == ks.claims {
		return []*ownRecord{ks.claims}
	}
	return []*ownRecord{ks.claims, ks.kept}
}

// dirty reports whether an own record is to be written again.
func (ks *keyState) dirty() bool {
	return ks.claims.dirty || ks.kept.dirty
}

// setDirty marks every own record to be written again.
func (ks *keyState) setDirty() {
	for _, r := range ks.own() {
		r.dirty = true
	}
}

// cachedRecord is another writer's record as last read: when its bytes
// have not changed, their decoding is reused, and when they have, the
// settled groups whose lines have not.
type cachedRecord struct {
	raw    []byte
	st     *state
	groups map[string]*settledGroup // by line
}

// locate names key's storage directory, a digest so that any key (a user
// id, an object prefix) makes one valid storage path, and the tag its
// reservation ids carry.
func (l *Ledger) locate(key string) (dir string, tag uint32, err error) {
	if key == "" {
		return "", 0, errors.New("quota: empty key")
	}
	sum := sha256.Sum256([]byte(key))
	return l.prefix + "/" + hex.EncodeToString(sum[:16]), binary.BigEndian.Uint32(sum[16:]), nil
}

// maxQueue bounds the ops waiting for one key: beyond it (a storage that
// stopped answering, say) callers are turned away at once.
const maxQueue = 4096

// do queues o for the next round of the key stored in dir and waits for
// its outcome. A caller that finds no round running leads one itself (its
// own op is then the first of the batch); what queues behind it meanwhile
// is left to a runner goroutine. A caller waiting in the queue leaves when
// ctx ends; one whose round is in progress waits for the round.
func (l *Ledger) do(ctx context.Context, dir string, o *op) error {
	o.done = make(chan struct{})
	l.mu.Lock()
	ks := l.keys[dir]
	if ks == nil {
		ks = l.newKeyState(dir)
		l.keys[dir] = ks
	}
	if len(ks.queue) >= maxQueue {
		l.mu.Unlock()
		return fmt.Errorf("quota: %d requests already wait for this key", maxQueue)
	}
	ks.queue = append(ks.queue, o)
	lead := !ks.running
	ks.running = true
	l.mu.Unlock()
	if lead {
		// Let the callers already runnable queue behind this one first:
		// with one P, a round holds it for its storage calls (an fsync on
		// the file system), so a caller that is not queued before the
		// round takes its batch waits for a round of its own.
		runtime.Gosched()
	}
	if lead && l.next(dir, ks) {
		l.mu.Lock()
		more := len(ks.queue) > 0
		if !more {
			l.end(dir, ks)
		}
		l.mu.Unlock()
		if more {
			go l.run(dir, ks)
		}
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		o.canceled.Store(true)
		return fmt.Errorf("quota: waiting for the ledger: %w", ctx.Err())
	}
	if o.err != nil {
		return o.err
	}
	return o.refusal
}

// run decides ks's queued ops, round after round, until none is left.
func (l *Ledger) run(dir string, ks *keyState) {
	for l.next(dir, ks) {
	}
}

// next decides the next batch of ks's queue, or ends the run and returns
// false when none is left.
func (l *Ledger) next(dir string, ks *keyState) bool {
	l.mu.Lock()
	batch := take(ks)
	if len(batch) == 0 {
		l.end(dir, ks)
		l.mu.Unlock()
		return false
	}
	l.mu.Unlock()
	l.round(ks, batch)
	for _, o := range batch {
		close(o.done)
	}
	return true
}

// end ends ks's run (l.mu held); a key with nothing recorded is forgotten.
func (l *Ledger) end(dir string, ks *keyState) {
	ks.running = false
	for _, r := range ks.own() {
		if r.stored || r.dirty || len(r.st.claims)+len(r.st.charges)+len(r.st.credits)+len(r.st.settled) > 0 {
			return
		}
	}
	delete(l.keys, dir)
}

// take removes from ks's queue the ops of its next round: one usage, reset
// or sweep alone, else up to maxBatch reserves and settles in order. Ops
// whose callers left are dropped.
func take(ks *keyState) []*op {
	var batch []*op
	i := 0
	for ; i < len(ks.queue) && len(batch) < maxBatch; i++ {
		o := ks.queue[i]
		if o.canceled.Load() {
			close(o.done)
			continue
		}
		if o.kind != opReserve && o.kind != opSettle {
			if len(batch) == 0 {
				batch, i = append(batch, o), i+1
			}
			break
		}
		batch = append(batch, o)
	}
	ks.queue = append(ks.queue[:0], ks.queue[i:]...)
	return batch
}
