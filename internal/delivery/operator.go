package delivery

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"go.uber.org/zap"
)

// Operator actions. An operator lists the pending and dead events (List),
// looks one up by id in any state (Find), puts dead events back in the
// queue (Redeliver, RedeliverDead) or drops them (Drop), and reads how
// many are dead (Dead, CountDead). Each change takes the event's storage
// lock, as Claim and Settle do, and writes the new record before it
// deletes the old one, so a storage failure never loses a record.

var (
	// ErrNoEvent reports that there is no record of the id (or that the id
	// cannot name an event).
	ErrNoEvent = errors.New("delivery: no such event")

	// ErrNotDead reports that an action on dead events was asked of an
	// event in another state; the error is a *StateError.
	ErrNotDead = errors.New("delivery: the event is not dead")

	// ErrDeadKept reports that a redelivered event is owed again but its
	// dead record could not be deleted: redelivering it again deletes it,
	// and so does the queue when it comes to the event.
	ErrDeadKept = errors.New("delivery: the event is pending again, but its dead record could not be deleted")
)

// StateError is ErrNotDead with the state the event is in.
type StateError struct {
	ID    string
	State State
}

func (e *StateError) Error() string {
	return fmt.Sprintf("delivery: event %s is %s, not dead", e.ID, e.State)
}

// Is makes a StateError match ErrNotDead.
func (e *StateError) Is(target error) bool { return target == ErrNotDead }

// Open builds a Queue for an operator's actions on the records below
// cfg.Prefix in cfg.Storage, without delivering anything: cfg.Send is not
// needed and Run returns at once. Instance defaults to "operator". Events
// it redelivers are delivered by the queues that Run for the prefix, on
// any instance sharing the storage, at their next scan.
func Open(cfg Config) (*Queue, error) {
	if cfg.Instance == "" {
		cfg.Instance = "operator"
	}
	if cfg.Send == nil {
		cfg.Send = func(context.Context, *Event) (int, []byte, error) {
			return 0, nil, errors.New("delivery: a queue opened for an operator sends nothing")
		}
	}
	q, err := New(cfg)
	if err != nil {
		return nil, err
	}
	q.passive = true
	return q, nil
}

// Prefix is the namespace of the queue's records in its storage.
func (q *Queue) Prefix() string { return q.prefix }

// Find returns the record of id in any state: its pending record, else a
// dead or done record in any group. Like List it reads without the
// event's lock. It returns an error matching ErrNoEvent when there is no
// record of id, and any storage failure as it is.
func (q *Queue) Find(ctx context.Context, id string) (*Event, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoEvent, err)
	}
	ev, err := q.load(ctx, q.pendingKey(id), id, Received)
	switch {
	case err == nil:
		return ev, nil
	case !notFound(err):
		return nil, fmt.Errorf("delivery: reading event %s: %w", id, err)
	}
	for _, dir := range []string{deadDir, doneDir} {
		ev, _, err := q.findIn(ctx, dir, id)
		if err != nil || ev != nil {
			return ev, err
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoEvent, id)
}

// findIn looks for id in every group of dir (deadDir or doneDir): the
// first record found and the keys of all (a dead record can be left in
// an earlier group by a redelivery that could not delete it).
func (q *Queue) findIn(ctx context.Context, dir, id string) (*Event, []string, error) {
	states := []State{Dead}
	if dir == doneDir {
		states = []State{Delivered, Refused}
	}
	groups, err := q.storage.List(ctx, q.dir(dir), false)
	if err != nil && !notFound(err) {
		return nil, nil, fmt.Errorf("delivery: listing %s: %w", q.dir(dir), err)
	}
	var first *Event
	var keys []string
	for _, g := range groups {
		key := g + "/" + id
		ev, err := q.load(ctx, key, id, states...)
		switch {
		case notFound(err):
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("delivery: reading %s: %w", key, err)
		}
		if first == nil || ev.Redelivered.After(first.Redelivered) {
			first = ev
		}
		keys = append(keys, key)
	}
	return first, keys, nil
}

// staleDead reports whether dead, a settled record found for the pending
// record ev, is the dead record of an earlier life of a redelivered event
// rather than the record of ev's own end.
func staleDead(dead, ev *Event) bool {
	return dead != nil && dead.State == Dead && dead.Redelivered.Before(ev.Redelivered)
}

// deleteDead deletes the dead records of id in groups.
func (q *Queue) deleteDead(ctx context.Context, id string, groups []int64) error {
	for _, g := range groups {
		if err := q.storage.Delete(ctx, q.deadKey(id, g)); err != nil && !notFound(err) {
			return err
		}
	}
	return nil
}

// lockEvent takes id's process and storage locks (Claim, Begin and the
// operator actions) and returns the lock's name, for release.
func (q *Queue) lockEvent(ctx context.Context, id string) (string, error) {
	lock := q.lockName(id)
	if !processLocks.lock(lock, ctx.Done()) {
		return "", fmt.Errorf("delivery: waiting for event %s: %w", id, ctx.Err())
	}
	if err := q.storage.Lock(ctx, lock); err != nil {
		processLocks.unlock(lock)
		q.observe(OutcomeStorageError)
		return "", fmt.Errorf("delivery: locking event %s: %w", id, err)
	}
	return lock, nil
}

// operand is what an operator action finds of id under its lock: its
// pending record, its current dead record with the keys of every dead
// record, or the state of its done record.
type operand struct {
	pending  *Event
	dead     *Event
	deadKeys []string
}

// examineLocked checks id, takes the event's lock and examines its
// records. unlock is nil when the id is malformed (ErrNoEvent) or the lock
// was not taken, and err then says why; otherwise the caller holds the
// lock until it calls unlock, and err is examine's.
func (q *Queue) examineLocked(ctx context.Context, id string) (op operand, unlock func(), err error) {
	if err := checkID(id); err != nil {
		return op, nil, fmt.Errorf("%w: %v", ErrNoEvent, err)
	}
	lock, err := q.lockEvent(ctx, id)
	if err != nil {
		return op, nil, err
	}
	op, err = q.examine(ctx, id)
	return op, func() { q.release(ctx, lock, id) }, err
}

// examine reads id's records for an action on a dead event, under id's
// lock. A pending record next to a dead record of its own life is what a
// move to dead/ leaves when it could not delete it: the event is dead.
// A dead record older than the pending record (see staleDead) is left by a
// redelivery: the event is pending. It returns a *StateError when the
// event is not dead, an error matching ErrNoEvent when there is no record.
func (q *Queue) examine(ctx context.Context, id string) (operand, error) {
	var op operand
	p, err := q.load(ctx, q.pendingKey(id), id, Received)
	switch {
	case err == nil:
		op.pending = p
	case !notFound(err):
		q.observe(OutcomeStorageError)
		return op, fmt.Errorf("delivery: reading event %s: %w", id, err)
	}
	op.dead, op.deadKeys, err = q.findIn(ctx, deadDir, id)
	if err != nil {
		q.observe(OutcomeStorageError)
		return op, err
	}
	if op.dead != nil && (op.pending == nil || !staleDead(op.dead, op.pending)) {
		return op, nil
	}
	if op.pending != nil {
		return op, &StateError{ID: id, State: Received}
	}
	done, _, err := q.findIn(ctx, doneDir, id)
	switch {
	case err != nil:
		q.observe(OutcomeStorageError)
		return op, err
	case done != nil:
		return op, &StateError{ID: id, State: done.State}
	}
	return op, fmt.Errorf("%w: %s", ErrNoEvent, id)
}

// Redeliver puts the dead event id back in the queue: under the event's
// lock it writes a pending record due now, with the same id (so the app
// gets the same Idempotency-Key), its attempts so far and a fresh RetryFor
// window (Redelivered is now), then deletes its dead record. This queue
// makes it due at once if it is running; every queue running for the
// prefix on any instance finds it at its next scan.
//
// An event that is not dead is left alone: the error is a *StateError
// (matching ErrNotDead), or matches ErrNoEvent when there is no record of
// id. A storage failure before the pending record is written leaves the
// event dead, and the error is returned. If only the delete fails, the
// pending record is returned with an error matching ErrDeadKept: the
// event will be delivered, and its leftover dead record is deleted by the
// queue or by redelivering it again (which then finds it pending and only
// deletes the leftover).
func (q *Queue) Redeliver(ctx context.Context, id string) (*Event, error) {
	op, unlock, err := q.examineLocked(ctx, id)
	if unlock == nil {
		return nil, err
	}
	defer unlock()
	var se *StateError
	switch {
	case errors.As(err, &se) && op.pending != nil && len(op.deadKeys) > 0:
		// Pending again after a redelivery that left its dead record:
		// finish that redelivery.
		if err := q.deleteKeys(ctx, op.deadKeys); err != nil {
			return op.pending, fmt.Errorf("%w: %s: %w", ErrDeadKept, id, err)
		}
		q.refreshDead(ctx)
		return op.pending, nil
	case err != nil:
		return nil, err
	}

	now := q.now()
	rec := *op.dead
	rec.State, rec.NextAt, rec.Redelivered = Received, now, now
	rec.Lease, rec.Owner, rec.Answer = time.Time{}, "", nil
	if err := q.store(ctx, q.pendingKey(id), &rec); err != nil {
		q.observe(OutcomeStorageError)
		q.logger.Error("redelivering a dead event failed; it stays dead", zap.String("id", id), zap.Error(err))
		return nil, fmt.Errorf("delivery: redelivering event %s (it stays dead): %w", id, err)
	}
	if !q.passive {
		q.owe(id, now, rec.Expires)
	}
	q.logger.Info("dead event redelivered", zap.String("id", id), zap.String("object", rec.Object),
		zap.Int("attempts", rec.Attempts))
	if err := q.deleteKeys(ctx, op.deadKeys); err != nil {
		return &rec, fmt.Errorf("%w: %s: %w", ErrDeadKept, id, err)
	}
	q.dead.Add(-1)
	return &rec, nil
}

// RedeliverDead redelivers every dead event (see Redeliver). It returns
// the events redelivered and, joined, the failures; an event that stopped
// being dead meanwhile is skipped. A failure leaves its event dead (or,
// for ErrDeadKept, pending with a leftover dead record) and does not stop
// the others.
func (q *Queue) RedeliverDead(ctx context.Context) ([]*Event, error) {
	dead, err := q.List(ctx, Dead)
	if err != nil {
		q.observe(OutcomeStorageError)
		return nil, err
	}
	var out []*Event
	var errs []error
	seen := make(map[string]bool, len(dead))
	for _, d := range dead {
		if seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		ev, err := q.Redeliver(ctx, d.ID)
		switch {
		case errors.Is(err, ErrNotDead), errors.Is(err, ErrNoEvent):
			continue
		case err != nil:
			errs = append(errs, err)
		}
		if ev != nil {
			out = append(out, ev)
		}
	}
	q.refreshDead(ctx)
	return out, errors.Join(errs...)
}

// Drop deletes the dead event id for good and returns its last record. A
// pending record the event's move to dead/ left behind is deleted first,
// so that no queue takes the event up again. An event that is not dead is
// left alone (a *StateError, or ErrNoEvent when there is no record): a
// pending event is owed to the app, and a done record is what answers
// copies of its callback. On a storage failure the error is returned and
// the event stays dead.
func (q *Queue) Drop(ctx context.Context, id string) (*Event, error) {
	op, unlock, err := q.examineLocked(ctx, id)
	if unlock == nil {
		return nil, err
	}
	defer unlock()
	if err != nil {
		return nil, err
	}
	keys := op.deadKeys
	if op.pending != nil {
		keys = append([]string{q.pendingKey(id)}, keys...)
	}
	if err := q.deleteKeys(ctx, keys); err != nil {
		return nil, fmt.Errorf("delivery: dropping event %s (it stays dead): %w", id, err)
	}
	q.forget(id)
	q.dead.Add(-1)
	q.logger.Info("dead event dropped", zap.String("id", id), zap.String("object", op.dead.Object),
		zap.Int("attempts", op.dead.Attempts))
	return op.dead, nil
}

// deleteKeys deletes keys in order, stopping at the first failure (a key
// already gone is no failure).
func (q *Queue) deleteKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := q.storage.Delete(ctx, k); err != nil && !notFound(err) {
			q.observe(OutcomeStorageError)
			q.logger.Error("deleting an event record failed", zap.String("key", k), zap.Error(err))
			return err
		}
	}
	return nil
}

// Dead is the number of dead events below the prefix as last counted:
// at each scan of a running queue, and by CountDead.
func (q *Queue) Dead() int { return int(max(q.dead.Load(), 0)) }

// CountDead counts the dead records below the prefix (one List of the
// dead groups and one per group; no record is read), remembers the count
// for Dead and returns it.
func (q *Queue) CountDead(ctx context.Context) (int, error) {
	groups, err := q.storage.List(ctx, q.dir(deadDir), false)
	if err != nil && !notFound(err) {
		return 0, fmt.Errorf("delivery: listing %s: %w", q.dir(deadDir), err)
	}
	ids := map[string]bool{}
	for _, g := range groups {
		keys, err := q.storage.List(ctx, g, false)
		if err != nil && !notFound(err) {
			return 0, fmt.Errorf("delivery: listing %s: %w", g, err)
		}
		for _, k := range keys {
			if id := path.Base(k); checkID(id) == nil {
				ids[id] = true
			}
		}
	}
	q.dead.Store(int64(len(ids)))
	return len(ids), nil
}

// CountPending counts the pending records below the prefix (one List; no
// record is read): the events owed to the app, on every instance.
func (q *Queue) CountPending(ctx context.Context) (int, error) {
	keys, err := q.storage.List(ctx, q.dir(pendingDir), false)
	if err != nil && !notFound(err) {
		return 0, fmt.Errorf("delivery: listing %s: %w", q.dir(pendingDir), err)
	}
	n := 0
	for _, k := range keys {
		if checkID(path.Base(k)) == nil {
			n++
		}
	}
	return n, nil
}

// refreshDead counts the dead events for Dead; a failure is logged and
// counted, and the last count stays.
func (q *Queue) refreshDead(ctx context.Context) {
	if _, err := q.CountDead(ctx); err != nil {
		q.observe(OutcomeStorageError)
		q.logger.Error("counting the dead events failed", zap.Error(err))
	}
}
