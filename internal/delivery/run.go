package delivery

import (
	"context"
	"errors"
	"path"
	"sort"
	"time"

	"go.uber.org/zap"
)

// Run delivers the events owed until ctx ends, then waits for the attempts
// in flight (each bounded by half the lease) and returns.
//
// At start and every 10 s it lists pending/, which also picks up events
// recorded by other handlers and instances sharing the storage (for
// example during a configuration reload); at start and every 10 minutes it
// purges expired groups; at each scan it also counts the dead records
// (Dead). Each due event is attempted as the package documentation
// describes, at most Parallel at a time. On a Queue opened for an
// operator (Open) it returns at once.
func (q *Queue) Run(ctx context.Context) {
	if q.passive {
		return
	}
	defer q.wg.Wait()
	t := time.NewTicker(q.tick)
	defer t.Stop()
	for {
		q.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step does what is due now: a scan, a purge, and the due attempts (which
// it starts and does not wait for).
func (q *Queue) step(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := q.now()
	if !now.Before(q.nextPurge) {
		q.purge(ctx)
		q.nextPurge = now.Add(purgeEvery)
	}
	if !now.Before(q.nextScan) {
		q.scan(ctx)
		q.refreshDead(ctx)
		q.nextScan = now.Add(scanEvery)
	}
	q.startDue(ctx)
}

// startDue starts attempts at the due events, earliest first, up to
// Parallel in flight.
func (q *Queue) startDue(ctx context.Context) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	type due struct {
		id string
		at time.Time
	}
	var ds []due
	for id, e := range q.index {
		if !e.due.After(now) && !q.inflight[id] {
			ds = append(ds, due{id, e.due})
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].at.Before(ds[j].at) })
	for _, d := range ds {
		if len(q.inflight) >= q.parallel {
			return
		}
		q.inflight[d.id] = true
		q.wg.Add(1)
		go func() {
			defer func() {
				q.mu.Lock()
				delete(q.inflight, d.id)
				q.mu.Unlock()
				q.wg.Done()
			}()
			q.attempt(ctx, d.id)
		}()
	}
}

// attempt makes one attempt at an owed event, if it can take its lease.
func (q *Queue) attempt(ctx context.Context, id string) {
	if known := q.snapshot(id); known.outcome != nil {
		q.recordOutcome(ctx, known.outcome, known.outcomeKey)
		return
	}
	tctx, cancel := context.WithTimeout(ctx, q.lease/2)
	ev := q.take(tctx, id)
	cancel()
	if ev == nil {
		return
	}
	q.observe(OutcomeRetried)
	// The attempt and its record outlive ctx (a reload or shutdown): an
	// attempt cut short could have reached the app and then be sent again.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.lease/2)
	status, answer, err := q.send(sctx, ev)
	cancel()
	sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), q.lease/2)
	defer cancel()
	_, _ = q.Settle(sctx, ev, status, answer, err) // Settle logs and keeps the event owed on failure
}

// recordOutcome writes a settled record that Settle could not write (see
// entry.outcome). The event is not sent again: the app has answered it.
func (q *Queue) recordOutcome(ctx context.Context, rec *Event, key string) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.lease/2)
	defer cancel()
	if q.move(sctx, rec, key) != nil {
		return // move logged it and backed the event off
	}
	switch rec.State {
	case Delivered:
		q.observe(OutcomeDelivered)
	case Refused:
		q.observe(OutcomeRefused)
	case Dead:
		q.dead.Add(1)
		q.observe(OutcomeDead)
	}
	q.logger.Info("an event's outcome, which storage had refused, is recorded now",
		zap.String("id", rec.ID), zap.String("state", string(rec.State)), zap.String("key", key))
	q.onSettle(*rec)
}

// take reserves an owed event for an attempt by this queue: under the
// event's lock it reloads the record and, unless another holder's lease or
// a later NextAt stands, writes this instance's lease. It returns the
// leased record, or nil when there is nothing to attempt now (the index is
// updated accordingly).
func (q *Queue) take(ctx context.Context, id string) *Event {
	known := q.snapshot(id)
	lock := q.lockName(id)
	if err := q.storage.Lock(ctx, lock); err != nil {
		if !errors.Is(ctx.Err(), context.Canceled) { // not merely stopping
			q.storageFailed("locking an owed event failed; it stays owed", id, known.expires, 0, err)
		}
		return nil
	}
	defer q.unlock(ctx, lock, id)

	ev, err := q.load(ctx, q.pendingKey(id), id, Received)
	switch {
	case notFound(err):
		q.vanished(ctx, id, known.expires)
		return nil
	case err != nil:
		if !errors.Is(ctx.Err(), context.Canceled) {
			q.storageFailed("reading an owed event failed; it stays owed", id, known.expires, 0, err)
		}
		return nil
	}
	now := q.now()
	ownEnded := ev.Owner == q.instance && ev.Lease.Equal(known.ended)
	if ev.Lease.After(now) && !ownEnded {
		q.postpone(id, ev.Lease, ev.Expires) // another holder's attempt (or the caller's first)
		return nil
	}
	if ev.NextAt.After(now) {
		q.postpone(id, ev.NextAt, ev.Expires) // rescheduled by another holder
		return nil
	}
	// A settled event whose pending record could not be deleted: finish
	// the move instead of delivering it again.
	groups := settledGroups(ev.Expires, now)
	done, err := q.settled(ctx, id, groups)
	if err != nil {
		q.storageFailed("checking an owed event for a settled record failed; it stays owed", id, ev.Expires, ev.Attempts, err)
		return nil
	}
	if staleDead(done, ev) {
		// The dead record of an earlier life, which the redelivery could
		// not delete: the event is owed again; finish the redelivery.
		if err := q.deleteDead(ctx, id, groups); err != nil {
			q.storageFailed("removing the dead record of a redelivered event failed; it stays owed", id, ev.Expires, ev.Attempts, err)
			return nil
		}
		done = nil
	}
	if done != nil {
		if err := q.storage.Delete(ctx, q.pendingKey(id)); err != nil {
			q.storageFailed("removing the pending record of a settled event failed", id, ev.Expires, ev.Attempts, err)
			return nil
		}
		q.forget(id)
		return nil
	}

	ev.Lease, ev.Owner = now.Add(q.lease), q.instance
	if err := q.store(ctx, q.pendingKey(id), ev); err != nil {
		q.storageFailed("taking the lease of an owed event failed; it stays owed", id, ev.Expires, ev.Attempts, err)
		return nil
	}
	q.postpone(id, ev.Lease, ev.Expires)
	return ev
}

// vanished handles an owed event whose pending record is gone. Settled by
// another holder, it is simply forgotten; otherwise the record was lost
// (for example a storage that restarted empty), which is logged as an
// error and counted.
func (q *Queue) vanished(ctx context.Context, id string, expires time.Time) {
	if expires.IsZero() {
		q.forget(id)
		q.logger.Warn("a pending event record disappeared before it could be read; settled elsewhere or lost",
			zap.String("id", id))
		return
	}
	done, err := q.settled(ctx, id, settledGroups(expires, q.now()))
	switch {
	case err != nil:
		q.storageFailed("checking a vanished event for a settled record failed; it stays owed", id, expires, 0, err)
	case done != nil:
		q.forget(id)
		q.logger.Debug("event settled by another holder", zap.String("id", id), zap.String("state", string(done.State)))
	default:
		q.forget(id)
		q.observe(OutcomeLost)
		q.logger.Error("an owed event's record vanished from storage; the event is lost",
			zap.String("id", id), zap.Time("expires", expires))
	}
}

// settledGroups are the groups where the settled record of an event
// expiring at expires can be, seen at now: the group of its expiry and,
// once that has passed, the groups of the last two hours (an event given up
// after its expiry is kept in the group of the hour it was given up).
func settledGroups(expires, now time.Time) []int64 {
	if !now.After(expires) {
		return []int64{hourCeil(expires)}
	}
	return groupsFor(expires, []time.Time{now.Add(-time.Hour), now})
}

// scan lists pending/ and remembers the events not yet known; events known
// but no longer listed are looked at now (settled elsewhere, or lost).
func (q *Queue) scan(ctx context.Context) {
	keys, err := q.storage.List(ctx, q.dir(pendingDir), false)
	if err != nil && !notFound(err) {
		q.observe(OutcomeStorageError)
		q.logger.Error("listing the pending events failed", zap.Error(err))
		return
	}
	listed := make(map[string]bool, len(keys))
	for _, key := range keys {
		id := path.Base(key)
		if checkID(id) != nil {
			continue
		}
		listed[id] = true
		q.mu.Lock()
		_, known := q.index[id]
		known = known || q.inflight[id] || q.corrupt[id]
		q.mu.Unlock()
		if known {
			continue
		}
		ev, err := q.load(ctx, key, id, Received)
		switch {
		case notFound(err): // settled meanwhile
		case inWriting(id, err): // a record being written, listed under its name
		case errors.Is(err, errCorrupt):
			q.mu.Lock()
			q.corrupt[id] = true
			q.mu.Unlock()
			q.observe(OutcomeStorageError)
			q.logger.Error("a pending event record is unreadable; left in place", zap.String("key", key), zap.Error(err))
		case err != nil:
			q.storageFailed("reading a pending event failed; it stays owed", id, time.Time{}, 0, err)
		default:
			due := ev.NextAt
			if ev.Lease.After(due) {
				due = ev.Lease
			}
			q.owe(id, due, ev.Expires)
		}
	}
	now := q.now()
	q.mu.Lock()
	for id, e := range q.index {
		if !listed[id] && !q.inflight[id] && e.due.After(now) && e.fails == 0 {
			e.due = now
		}
	}
	q.mu.Unlock()
}
