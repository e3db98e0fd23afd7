package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrNotRecorded reports that the outcome of a first attempt begun with
// Begin could not be written, and the app did not take the event: nothing
// is owed, and the caller must not tell the sender the event is queued.
var ErrNotRecorded = errors.New("delivery: the event could not be recorded")

// Begin is Claim for a caller that makes the first attempt at once: a fresh
// event is not written yet. Its locks are held (copies on any instance wait
// for them) until Settle writes the attempt's outcome, the one write the
// event costs when the app takes it at the first attempt, or Release or
// Unhold ends the attempt without writing anything. A copy, or a storage
// failure, is reported as by Claim, and then nothing is held.
//
// If the process stops during the attempt nothing is recorded: the sender
// got no answer, and a copy of the event is fresh again.
func (q *Queue) Begin(ctx context.Context, ev *Event, alsoExpires ...time.Time) (Claim, error) {
	if err := checkID(ev.ID); err != nil {
		return Claim{}, err
	}
	if ev.Expires.IsZero() {
		return Claim{}, errors.New("delivery: event has no expiry")
	}
	lock, err := q.lockEvent(ctx, ev.ID)
	if err != nil {
		return Claim{}, err
	}
	found, err := q.lookup(ctx, ev.ID, groupsFor(ev.Expires, alsoExpires))
	if err != nil || found != nil {
		q.release(ctx, lock, ev.ID)
		if err != nil {
			q.observe(OutcomeStorageError)
			return Claim{}, fmt.Errorf("delivery: looking up event %s: %w", ev.ID, err)
		}
		q.observe(OutcomeDuplicate)
		return Claim{State: found.State, Event: found}, nil
	}
	if ev.Created.IsZero() {
		ev.Created = q.now()
	}
	ev.State, ev.Attempts, ev.Owner = Received, 0, q.instance
	ev.Lease, ev.NextAt = time.Time{}, time.Time{}
	ev.Status, ev.LastError, ev.Answer = 0, "", nil
	q.mu.Lock()
	q.held[ev.ID] = lock
	q.mu.Unlock()
	return Claim{Fresh: true, State: Received, Event: ev}, nil
}

// Unhold ends the first attempt at a fresh event of Begin without writing
// anything, if Settle or Release has not ended it; otherwise it does
// nothing. Callers defer it, so that a panic in the attempt frees the
// event's locks.
func (q *Queue) Unhold(ctx context.Context, id string) {
	if lock, ok := q.takeHeld(id); ok {
		q.release(ctx, lock, id)
	}
}

// takeHeld removes id from the events whose first attempt is under way and
// returns its lock name.
func (q *Queue) takeHeld(id string) (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	lock, ok := q.held[id]
	delete(q.held, id)
	return lock, ok
}

// release frees an event's storage and process locks.
func (q *Queue) release(ctx context.Context, lock, id string) {
	q.unlock(ctx, lock, id)
	processLocks.unlock(lock)
}

// settleHeld is settleFirst for an event whose locks, named lock, the
// caller took from held: they are freed when it returns, even on a panic.
func (q *Queue) settleHeld(ctx context.Context, lock string, ev *Event, status int, answer []byte, sendErr error) (State, error) {
	defer q.release(ctx, lock, ev.ID)
	return q.settleFirst(ctx, ev, status, answer, sendErr)
}

// settleFirst records the outcome of the first attempt at an event begun
// with Begin, whose locks the caller holds: one write, the done record if
// the app took or refused the event, else its pending record, due after a
// backoff. If the write fails, the app's decision stands but is not
// recorded (a copy of the event would be delivered again, with the same id)
// or, when the app did not take the event, ErrNotRecorded is returned and
// nothing is owed.
func (q *Queue) settleFirst(ctx context.Context, ev *Event, status int, answer []byte, sendErr error) (State, error) {
	rec := attempted(ev, status, sendErr)
	log := func(level zapcore.Level, msg string, extra ...zap.Field) {
		q.logAttempt(level, msg, &rec, sendErr, extra...)
	}

	switch st := Classify(status, sendErr); st {
	case Delivered, Refused:
		rec.State = st
		if st == Refused {
			rec.Answer = boundAnswer(answer)
		}
		key := q.doneKey(rec.ID, hourCeil(rec.Expires))
		if err := q.store(ctx, key, &rec); err != nil {
			q.observe(OutcomeStorageError)
			log(zapcore.ErrorLevel, "recording the app's answer to an event failed; a copy of it would be delivered again",
				zap.String("state", string(st)), zap.Error(err))
			return Received, fmt.Errorf("delivery: recording event %s as %s: %w", rec.ID, st, err)
		}
		*ev = rec
		if st == Delivered {
			q.observe(OutcomeDelivered)
			log(zapcore.DebugLevel, "event delivered")
		} else {
			q.observe(OutcomeRefused)
			log(zapcore.WarnLevel, "the app refused the event; copies get its answer")
		}
		return st, nil
	}

	rec.State = Received
	rec.NextAt = q.now().Add(backoff(rec.Attempts, q.rand()))
	if err := q.store(ctx, q.pendingKey(rec.ID), &rec); err != nil {
		q.observe(OutcomeStorageError)
		log(zapcore.ErrorLevel, "recording an event the app did not take failed; it is not queued", zap.Error(err))
		return Received, fmt.Errorf("%w: %s: %w", ErrNotRecorded, rec.ID, err)
	}
	q.owe(rec.ID, rec.NextAt, rec.Expires)
	*ev = rec
	q.observe(OutcomeQueued)
	log(zapcore.WarnLevel, "delivery attempt failed; will retry", zap.Time("retry_at", rec.NextAt))
	return Received, nil
}
