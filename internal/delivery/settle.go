package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// errTaken reports that a lapsed lease was taken over, or the event settled,
// by another holder.
var errTaken = errors.New("the event was taken over or settled by another holder")

// Settle records the outcome of one attempt at ev: the caller's own first
// attempt (ev as Claim filled it in) or one of Run's. (For an event begun
// with Begin, see settleFirst: one write, and the held locks are freed.)
// By Classify:
//
//   - Delivered: the record moves to done/<group of Expires>/<id>;
//   - Refused: the same, keeping the app's status and answer (at most
//     MaxAnswer bytes) for copies;
//   - Received (retryable): Attempts+1, the lease is released and the next
//     attempt is due after a backoff; once RetryFor has passed since
//     Created (or since an operator redelivered the event), the record
//     moves to dead/ instead and Dead is returned.
//
// Each change is one write (a move also deletes the pending record, after
// the new record is written). On success ev is updated to the new record.
// On a storage failure the event stays owed: it is kept in this queue with
// a backoff, logged with the cause, and the error is returned with the
// state still Received. Settle never reports Delivered or Refused for an
// outcome it could not record. An outcome the app decided (delivered,
// refused) or the end of retry_for (dead) that could not be written is
// kept in memory: this queue's next try writes it and does not send the
// event again. (Another instance may, once the lease lapses, since
// storage does not show the outcome: the app tells copies apart by
// Idempotency-Key.)
func (q *Queue) Settle(ctx context.Context, ev *Event, status int, answer []byte, sendErr error) (State, error) {
	if err := checkID(ev.ID); err != nil {
		return "", err
	}
	if lock, ok := q.takeHeld(ev.ID); ok {
		st, err := q.settleHeld(ctx, lock, ev, status, answer, sendErr)
		if err == nil && st != Received {
			q.onSettle(*ev) // once the event's locks are free
		}
		return st, err
	}
	now := q.now()
	rec := attempted(ev, status, sendErr)
	log := func(level zapcore.Level, msg string, extra ...zap.Field) {
		q.logAttempt(level, msg, &rec, sendErr, extra...)
	}

	switch st := Classify(status, sendErr); st {
	case Delivered, Refused:
		rec.State, rec.NextAt = st, time.Time{}
		if st == Refused {
			rec.Answer = boundAnswer(answer)
		}
		key := q.doneKey(rec.ID, hourCeil(rec.Expires))
		if err := q.move(ctx, &rec, key); err != nil {
			q.endLease(ev)
			q.unrecorded(&rec, key)
			return Received, err
		}
		*ev = rec
		if st == Delivered {
			q.observe(OutcomeDelivered)
			level := zapcore.InfoLevel
			if rec.Attempts == 1 {
				level = zapcore.DebugLevel
			}
			log(level, "event delivered")
		} else {
			q.observe(OutcomeRefused)
			log(zapcore.WarnLevel, "the app refused the event; copies get its answer")
		}
		q.onSettle(rec)
		return st, nil
	}

	if !now.Before(retryFrom(&rec).Add(q.retryFor)) {
		rec.State, rec.NextAt = Dead, time.Time{}
		group := hourCeil(rec.Expires)
		if now.After(rec.Expires) {
			group = hourCeil(now)
		}
		key := q.deadKey(rec.ID, group)
		if err := q.move(ctx, &rec, key); err != nil {
			q.endLease(ev)
			q.unrecorded(&rec, key)
			return Received, err
		}
		*ev = rec
		q.dead.Add(1)
		q.observe(OutcomeDead)
		log(zapcore.ErrorLevel, "event not delivered within retry_for; kept as dead", zap.String("kept_at", key))
		q.onSettle(rec)
		return Dead, nil
	}

	rec.State = Received
	rec.NextAt = now.Add(backoff(rec.Attempts, q.rand()))
	if err := q.reschedule(ctx, ev, &rec); err != nil {
		if errors.Is(err, errTaken) {
			q.owe(rec.ID, now.Add(q.lease), rec.Expires)
			log(zapcore.WarnLevel, "the attempt outlived its lease and another holder has the event; leaving it to them")
			return Received, nil
		}
		q.storageFailed("rescheduling an event failed; it stays owed", rec.ID, rec.Expires, rec.Attempts, err)
		q.endLease(ev)
		return Received, fmt.Errorf("delivery: rescheduling event %s: %w", rec.ID, err)
	}
	q.owe(rec.ID, rec.NextAt, rec.Expires)
	*ev = rec
	if rec.Attempts == 1 {
		q.observe(OutcomeQueued)
	}
	log(zapcore.WarnLevel, "delivery attempt failed; will retry", zap.Time("retry_at", rec.NextAt))
	return Received, nil
}

// retryFrom is when rec's RetryFor window began: when it was first
// recorded, or when an operator last redelivered it.
func retryFrom(rec *Event) time.Time {
	if rec.Redelivered.After(rec.Created) {
		return rec.Redelivered
	}
	return rec.Created
}

// attempted is ev's record after one more attempt that ended with status
// and sendErr: its lease released, no answer kept yet.
func attempted(ev *Event, status int, sendErr error) Event {
	rec := *ev
	rec.Attempts++
	rec.Status, rec.LastError, rec.Answer = status, errText(sendErr), nil
	rec.Lease, rec.Owner = time.Time{}, ""
	return rec
}

// logAttempt writes a line about an attempt at rec. The event's fields are
// built only for a line that is written: a delivery on the first attempt,
// the common case, logs at debug.
func (q *Queue) logAttempt(level zapcore.Level, msg string, rec *Event, sendErr error, extra ...zap.Field) {
	ce := q.logger.Check(level, msg)
	if ce == nil {
		return
	}
	fields := append([]zap.Field{zap.String("id", rec.ID), zap.String("object", rec.Object),
		zap.Int("attempts", rec.Attempts), zap.Int("status", rec.Status)}, extra...)
	if sendErr != nil {
		fields = append(fields, zap.NamedError("delivery_error", sendErr))
	}
	ce.Write(fields...)
}

// endLease notes, after an outcome could not be written, that the attempt
// under ev's lease has ended, so that the next try follows the backoff
// instead of waiting for the lease the stored record still shows.
func (q *Queue) endLease(ev *Event) {
	if ev.Owner == q.instance && !ev.Lease.IsZero() {
		q.leaseEnded(ev.ID, ev.Lease)
	}
}

// move writes rec's settled record at key, then deletes its pending record.
// If the write fails the event stays owed (nothing changed). If only the
// delete fails the event is settled; its pending record is removed when
// the queue next comes to it (see take), so it is kept owed meanwhile.
func (q *Queue) move(ctx context.Context, rec *Event, key string) error {
	if err := q.store(ctx, key, rec); err != nil {
		q.storageFailed("recording a "+string(rec.State)+" event failed; it stays owed", rec.ID, rec.Expires, rec.Attempts, err)
		return fmt.Errorf("delivery: recording event %s as %s: %w", rec.ID, rec.State, err)
	}
	if err := q.storage.Delete(ctx, q.pendingKey(rec.ID)); err != nil {
		q.storageFailed("removing the pending record of a settled event failed; it will be removed later",
			rec.ID, rec.Expires, rec.Attempts, err)
		return nil
	}
	q.forget(rec.ID)
	return nil
}

// reschedule writes rec, the record of an event still owed, over the
// pending record held as held. While held's lease is this instance's and
// still running nobody else can have taken the event, so it is written
// directly; otherwise it is written under the event's lock, and only if the
// stored record still carries held's lease.
func (q *Queue) reschedule(ctx context.Context, held, rec *Event) error {
	if held.Owner == q.instance && q.now().Before(held.Lease) {
		return q.store(ctx, q.pendingKey(rec.ID), rec)
	}
	lock := q.lockName(rec.ID)
	if err := q.storage.Lock(ctx, lock); err != nil {
		return err
	}
	defer q.unlock(ctx, lock, rec.ID)
	cur, err := q.load(ctx, q.pendingKey(rec.ID), rec.ID, Received)
	switch {
	case notFound(err):
		return errTaken
	case err != nil:
		return err
	case cur.Owner != held.Owner || !cur.Lease.Equal(held.Lease):
		return errTaken
	}
	return q.store(ctx, q.pendingKey(rec.ID), rec)
}
