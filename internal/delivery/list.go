package delivery

import (
	"context"
	"fmt"
	"path"
	"sort"
)

// List returns the records in state, for operators: Received lists
// pending/, Dead lists dead/, Delivered and Refused list done/ (which holds
// both, kept until their expiry; this reads every record there). Records
// settled or purged while listing are left out; any other failure is
// returned. The result is sorted by Created.
func (q *Queue) List(ctx context.Context, state State) ([]*Event, error) {
	var out []*Event
	switch state {
	case Received:
		if err := q.listDir(ctx, q.dir(pendingDir), state, &out); err != nil {
			return nil, err
		}
	case Delivered, Refused, Dead:
		dir := doneDir
		if state == Dead {
			dir = deadDir
		}
		groups, err := q.storage.List(ctx, q.dir(dir), false)
		if err != nil && !notFound(err) {
			return nil, fmt.Errorf("delivery: listing %s: %w", q.dir(dir), err)
		}
		for _, g := range groups {
			if err := q.listDir(ctx, g, state, &out); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("delivery: no such state %q", state)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// listDir appends the records in state found directly below dir.
func (q *Queue) listDir(ctx context.Context, dir string, state State, out *[]*Event) error {
	keys, err := q.storage.List(ctx, dir, false)
	if err != nil && !notFound(err) {
		return fmt.Errorf("delivery: listing %s: %w", dir, err)
	}
	for _, key := range keys {
		id := path.Base(key)
		if checkID(id) != nil {
			continue
		}
		b, err := q.storage.Load(ctx, key)
		if notFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delivery: reading %s: %w", key, err)
		}
		ev, err := decode(b, id, Received, Delivered, Refused, Dead)
		if inWriting(id, err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delivery: reading %s: %w", key, err)
		}
		if ev.State == state {
			*out = append(*out, ev)
		}
	}
	return nil
}
