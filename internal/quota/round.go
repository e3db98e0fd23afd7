package quota

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// round decides one batch of ks's ops (see take) with one clock reading.
func (l *Ledger) round(ks *keyState, batch []*op) {
	ctx := context.Background() // storage back ends time out on their own
	at := l.now()
	for _, r := range ks.own() {
		r.st.prune(at.Unix())
	}
	ks.memo.round()
	if batch[0].kind != opUsage && batch[0].kind != opSweep {
		l.renew(ctx, ks, at.Unix())
	}
	switch batch[0].kind {
	case opUsage:
		l.roundUsage(ctx, ks, batch[0], at)
	case opReset:
		l.roundReset(ctx, ks, batch[0], at)
	case opSweep:
		if ks.needsSweep(at.Unix()) {
			l.rewrite(ctx, ks, at.Unix())
		}
	default:
		l.roundDecide(ctx, ks, batch, at)
	}
}

// roundDecide decides reserves and settles: it reads the other writers'
// records, decides each op in order, writes the own record, reads the
// others again and confirms the granted ops against what they hold then
// (all at once when everything fits, else one by one in order). An op is
// granted only if it fits both times. Because every writer writes its
// grants before the read that confirms them, of two writers granting at
// once at least one sees the other's grants: no key ever holds more than
// its limits (see the package documentation). Ops the second reading
// refuses are withdrawn by writing the own record again.
//
// Decisions change the own record in place; what they added to its claims
// and charges is taken back when a write or a reading fails, or for the
// ops the second reading refuses. Settled reservations stay settled,
// whatever fails: a release another instance may have seen is never taken
// back.
func (l *Ledger) roundDecide(ctx context.Context, ks *keyState, batch []*op, at time.Time) {
	now := at.Unix()
	// The first reading may be the last round's: what it grants is
	// confirmed by the reading after the write anyway. It is read afresh
	// to settle (a reservation must be seen live as it is now) and before
	// a refusal, which is final.
	others, fresh := ks.others, false
	if others == nil || slices.ContainsFunc(batch, func(o *op) bool { return o.kind == opSettle }) {
		if others, fresh = l.readOthers(ctx, ks, now), true; ks.readErr != nil {
			fail(batch, false, ks.readErr)
			return
		}
	}
	v := l.decideAll(ks, batch, at, others)
	if !fresh && slices.ContainsFunc(batch, func(o *op) bool { return o.refusal != nil }) {
		v.undo()
		if others = l.readOthers(ctx, ks, now); ks.readErr != nil {
			fail(batch, false, ks.readErr)
			return
		}
		v = l.decideAll(ks, batch, at, others)
	}
	grants := slices.ContainsFunc(batch, func(o *op) bool { return o.granted })
	if !grants && !slices.ContainsFunc(batch, func(o *op) bool { return o.released }) && !ks.dirty() {
		return
	}
	if err := l.write(ctx, ks, now); err != nil {
		v.undo()
		ks.setDirty()
		fail(batch, true, err)
		return
	}
	if !grants {
		return
	}
	if others = l.readOthers(ctx, ks, now); ks.readErr != nil {
		v.undo()
		fail(batch, true, fmt.Errorf("quota: confirming what was written: %w", ks.readErr))
		l.rewrite(ctx, ks, now)
		return
	}
	// Mostly, the round's grants fit together with what the others hold
	// now: then they all stand, and no limit is exceeded.
	if confirm := newView(l.limits, at, ks, others); confirm.within() {
		for _, o := range batch {
			if o.reserved && confirm.settledBy(o.id, false) {
				o.reserved = false // another instance settled it at the same moment
			}
			o.usage = confirm.usage()
		}
		return
	}
	// Else they are decided again in order, each release at its op's place
	// (an upload settled with its reservation adds no room for the ops
	// before it), the releases being taken back meanwhile.
	v.undo()
	v.unrelease()
	confirm := newView(l.limits, at, ks, others)
	withdrawn := false
	for _, o := range batch {
		was := o.granted
		l.decide(confirm, o, true)
		withdrawn = withdrawn || was && !o.granted
	}
	if withdrawn {
		l.rewrite(ctx, ks, now)
	}
}

// decideAll decides batch in order against ks's own record, which it
// changes, and others; the view it returns can undo the changes.
func (l *Ledger) decideAll(ks *keyState, batch []*op, at time.Time, others map[string]*state) *view {
	v := newView(l.limits, at, ks, others)
	for _, o := range batch {
		l.decide(v, o, false)
	}
	return v
}

// decide decides o against v, changing v's own record when it is granted.
// Deciding again (confirming one by one) keeps the first decision's
// reservation id and released reservation, releases it again at the op's
// place, and decides again only what was granted: a refusal stays. A
// reservation another writer settled at the same moment is then not this
// upload's: the upload is charged on its own, if it fits.
func (l *Ledger) decide(v *view, o *op, again bool) {
	var refusal *Refusal
	switch {
	case again && o.released:
		conflict := v.settledBy(o.id, false)
		v.release(o.id)
		o.reserved = !conflict
	case o.kind == opSettle && !again:
		o.released = o.id.writer != "" && o.id.tag == o.tag && v.live(o.id)
		o.reserved = o.released
		if o.released {
			v.release(o.id)
		}
	}
	if again && !o.granted {
		o.usage = v.usage()
		return // the refusal stays
	}
	switch o.kind {
	case opReserve:
		refusal = v.reserve(o.bytes, o.expiry)
		if refusal == nil && !again {
			o.id = resID{writer: v.writer, tag: o.tag, expiry: o.expiry, bytes: o.bytes, seq: l.seq.Add(1)}
		}
	case opSettle:
		refusal = v.charge(o.bytes, l.chargeUntil(v.now), !o.reserved || o.bytes > o.id.bytes)
	}
	o.granted, o.refusal = refusal == nil, nil
	if refusal != nil {
		o.refusal = refusal // a nil *Refusal would be a non-nil error
	}
	o.usage = v.usage()
}

// chargeUntil is the second an upload settled at second now stops
// counting: the end of the Window that starts at the end of now's slot.
func (l *Ledger) chargeUntil(now int64) int64 {
	return (now/l.slot+1)*l.slot + l.window
}

// fail gives err to the ops of batch (only the granted ones when
// grantedOnly: the refused were decided on a sound reading).
func fail(batch []*op, grantedOnly bool, err error) {
	for _, o := range batch {
		if !grantedOnly || o.granted {
			o.granted, o.err = false, err
		}
	}
}
