package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Claim is what Claim found or recorded for an event id.
type Claim struct {
	// Fresh is true when the event was not known and is now recorded
	// (State is Received): the caller makes the first attempt and settles it.
	Fresh bool
	// State is where the recorded event stands. For a copy: Received (owed,
	// queued or in flight), Delivered (answer it as a duplicate), Refused
	// (give it Status and Answer again) or Dead.
	State State
	// Event is the record: the caller's event, filled in, when Fresh; what
	// storage holds otherwise.
	Event *Event
}

// Claim records ev as a new event, or reports what is already recorded for
// its id. It looks the id up in pending/, then in done/ and dead/ in the
// group of ev.Expires and in the groups of alsoExpires (a caller whose
// expiry is not exactly reproducible passes the neighbouring ones). The
// look-up and the write happen under the event's storage lock, so that of
// concurrent copies on any instance sharing the storage exactly one is
// Fresh.
//
// A fresh event costs one storage write, its pending record; ev is filled in
// (State Received, Created if zero, Owner this instance, and a Lease and
// NextAt firstAttempt from now, reserving the event for the caller's own
// first attempt). When firstAttempt passes without Settle, Run delivers the
// event. Copies cost no write.
//
// A storage failure (lock, read, write, or an unreadable record) is
// returned as an error, never taken as "not found" or as an answer; the
// caller then knows nothing was recorded.
func (q *Queue) Claim(ctx context.Context, ev *Event, firstAttempt time.Duration, alsoExpires ...time.Time) (Claim, error) {
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
	defer q.release(ctx, lock, ev.ID)

	found, err := q.lookup(ctx, ev.ID, groupsFor(ev.Expires, alsoExpires))
	if err != nil {
		q.observe(OutcomeStorageError)
		return Claim{}, fmt.Errorf("delivery: looking up event %s: %w", ev.ID, err)
	}
	if found != nil {
		q.observe(OutcomeDuplicate)
		return Claim{State: found.State, Event: found}, nil
	}

	now := q.now()
	if ev.Created.IsZero() {
		ev.Created = now
	}
	ev.State, ev.Attempts = Received, 0
	ev.Lease, ev.NextAt, ev.Owner = now.Add(firstAttempt), now.Add(firstAttempt), q.instance
	ev.Status, ev.LastError, ev.Answer = 0, "", nil
	if err := q.store(ctx, q.pendingKey(ev.ID), ev); err != nil {
		q.observe(OutcomeStorageError)
		return Claim{}, fmt.Errorf("delivery: recording event %s: %w", ev.ID, err)
	}
	q.owe(ev.ID, ev.Lease, ev.Expires)
	return Claim{Fresh: true, State: Received, Event: ev}, nil
}

// lookup finds the record of id: pending first, then done and dead in each
// of groups. It returns nil, nil when there is none, and an error for any
// failure other than "not found", including an unreadable record.
//
// Pending is read first because a settled event's done or dead record is
// written before its pending record is deleted: a pending record missing
// here is either never written or already settled, and then the settled
// record is found below.
func (q *Queue) lookup(ctx context.Context, id string, groups []int64) (*Event, error) {
	ev, err := q.load(ctx, q.pendingKey(id), id, Received)
	if err == nil || !notFound(err) {
		return ev, err
	}
	return q.settled(ctx, id, groups)
}

// settled finds the done or dead record of id in groups (nil, nil if none).
func (q *Queue) settled(ctx context.Context, id string, groups []int64) (*Event, error) {
	for _, g := range groups {
		ev, err := q.load(ctx, q.doneKey(id, g), id, Delivered, Refused)
		if err == nil || !notFound(err) {
			return ev, err
		}
	}
	for _, g := range groups {
		ev, err := q.load(ctx, q.deadKey(id, g), id, Dead)
		if err == nil || !notFound(err) {
			return ev, err
		}
	}
	return nil, nil
}
