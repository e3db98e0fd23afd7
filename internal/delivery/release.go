package delivery

import (
	"context"
	"fmt"
)

// Release forgets a fresh event whose first attempt failed, for callers
// that keep nothing owed (delivery direct): an event begun with Begin has
// its locks freed, and nothing was written; one claimed with Claim has its
// pending record deleted,
// so a later copy of the upload is a fresh event again. A record another
// holder has taken meanwhile (its lease is not the one ev holds) is left
// alone. On a storage failure the event stays owed and the error is
// returned.
func (q *Queue) Release(ctx context.Context, ev *Event) error {
	if lock, ok := q.takeHeld(ev.ID); ok {
		q.release(ctx, lock, ev.ID) // begun with Begin: nothing was written
		return nil
	}
	lock := q.lockName(ev.ID)
	if err := q.storage.Lock(ctx, lock); err != nil {
		q.observe(OutcomeStorageError)
		return fmt.Errorf("delivery: locking event %s: %w", ev.ID, err)
	}
	defer q.unlock(ctx, lock, ev.ID)
	cur, err := q.load(ctx, q.pendingKey(ev.ID), ev.ID, Received)
	switch {
	case notFound(err):
		q.forget(ev.ID)
		return nil
	case err != nil:
		q.observe(OutcomeStorageError)
		return fmt.Errorf("delivery: reading event %s: %w", ev.ID, err)
	case cur.Owner != ev.Owner || !cur.Lease.Equal(ev.Lease):
		return nil
	}
	if err := q.storage.Delete(ctx, q.pendingKey(ev.ID)); err != nil && !notFound(err) {
		q.observe(OutcomeStorageError)
		return fmt.Errorf("delivery: releasing event %s: %w", ev.ID, err)
	}
	q.forget(ev.ID)
	return nil
}
