package quota

import (
	"cmp"
	"slices"
	"time"
)

// view counts one key's usage at one moment from every writer's record:
// this Ledger's own (which decisions change) and the others' as read.
type view struct {
	limits Limits
	at     time.Time
	now    int64 // at, in whole Unix seconds (rounded down)
	// writer and own are the own record of reservations; keptWriter and
	// kept that of charges, credits and settlements: the same record
	// unless the Ledger splits them (see Ledger.quick).
	writer, keptWriter string
	own, kept          *state
	others             map[string]*state

	// released sums, by claim entry, the reservations settled by any
	// writer, each once.
	released map[claimRef]amount
	// charged and credited sum every writer's charges and credits by the
	// second they stop counting; their difference (floored at 0 per
	// second) counts.
	charged, credited map[int64]amount

	pending     amount // live reservations, net of released
	chargedUsed amount // settled uploads in the window, net of credits

	added []addition // what reserve and charge added to own, for undo
	// prior are the own record's settled groups before the view's first
	// release in each (nil: none), for unrelease.
	prior map[claimRef]*settledGroup
}

// addition is an amount added to an entry of an own record.
type addition struct {
	st *state
	es *entries
	at int64
	a  amount
}

// unrelease takes back, for now, the view's releases from the own record
// (and leaves v unusable).
func (v *view) unrelease() {
	for ref, g := range v.prior {
		if g == nil {
			delete(v.kept.settled, ref)
		} else {
			v.kept.settled[ref] = g
		}
		v.kept.changed = true
	}
	v.prior = nil
}

// undo takes back what reserve and charge added to the own record (and
// leaves v unusable).
func (v *view) undo() {
	for i := len(v.added) - 1; i >= 0; i-- {
		a := v.added[i]
		a.es.remove(a.at, a.a)
		a.st.changed = true
	}
	v.added = nil
}

// newView counts ks's own records and others at at. ks.memo remembers,
// across views, what two writers' groups of one claim entry have in
// common.
func newView(limits Limits, at time.Time, ks *keyState, others map[string]*state) *view {
	v := &view{limits: limits, at: at, now: at.Unix(), writer: ks.claims.writer, own: ks.claims.st,
		keptWriter: ks.kept.writer, kept: ks.kept.st, others: others,
		released: map[claimRef]amount{}, charged: map[int64]amount{}, credited: map[int64]amount{}}
	overlaps := &ks.memo
	var done []*state // the writers whose settled reservations are summed
	v.each(func(w string, s *state) {
		for ref, g := range s.settled {
			if ref.expiry <= v.now {
				continue
			}
			add := g.total
			if _, shared := v.released[ref]; shared { // settled on another instance too: count each once
				add = overlaps.unique(g, ref, done)
			}
			v.released[ref] = v.released[ref].plus(add)
		}
		done = append(done, s)
	})
	v.each(func(w string, s *state) {
		for _, e := range s.claims.from(v.now) {
			if len(v.released) > 0 {
				e.amount = e.minus(v.released[claimRef{w, e.at}])
			}
			v.pending = v.pending.plus(e.amount)
		}
		for _, e := range s.charges.from(v.now) {
			v.charged[e.at] = v.charged[e.at].plus(e.amount)
		}
		for _, e := range s.credits.from(v.now) {
			v.credited[e.at] = v.credited[e.at].plus(e.amount)
		}
	})
	for u, a := range v.charged {
		v.chargedUsed = v.chargedUsed.plus(a.minus(v.credited[u]))
	}
	return v
}

// each calls f with every writer's state, its own first.
func (v *view) each(f func(w string, s *state)) {
	f(v.writer, v.own)
	if v.kept != v.own {
		f(v.keptWriter, v.kept)
	}
	for w, s := range v.others {
		f(w, s)
	}
}

func (v *view) state(w string) *state {
	switch w {
	case v.writer:
		return v.own
	case v.keptWriter:
		return v.kept
	}
	return v.others[w]
}

// usage is what counts now.
func (v *view) usage() Usage {
	return Usage{
		Bytes:        v.pending.bytes + v.chargedUsed.bytes,
		Uploads:      v.pending.n + v.chargedUsed.n,
		Pending:      v.pending.n,
		PendingBytes: v.pending.bytes,
		Limits:       v.limits,
		At:           v.at,
	}
}

// within reports whether the usage is within every limit.
func (v *view) within() bool {
	u := v.usage()
	return (v.limits.Bytes == 0 || u.Bytes <= v.limits.Bytes) &&
		(v.limits.Uploads == 0 || u.Uploads <= v.limits.Uploads) &&
		(v.limits.Pending == 0 || u.Pending <= v.limits.Pending)
}

// check refuses a request that would use bytes, uploads and pending more,
// or returns nil when it fits every limit.
func (v *view) check(bytes, uploads, pending int64) *Refusal {
	u := v.usage()
	var worst *Refusal
	for _, d := range []struct {
		reason            Reason
		limit, used, need int64
	}{
		{ReasonBytes, v.limits.Bytes, u.Bytes, bytes},
		{ReasonUploads, v.limits.Uploads, u.Uploads, uploads},
		{ReasonPending, v.limits.Pending, u.Pending, pending},
	} {
		if d.limit == 0 || d.need == 0 || d.used+d.need <= d.limit {
			continue
		}
		r := &Refusal{Reason: d.reason, Limit: d.limit, Used: d.used, Asked: d.need}
		if d.need <= d.limit {
			r.RetryAt = v.freeAt(d.reason, d.used+d.need-d.limit)
		}
		switch {
		case worst == nil:
			worst = r
		case worst.RetryAt.IsZero():
		case r.RetryAt.IsZero() || r.RetryAt.After(worst.RetryAt):
			worst = r
		}
	}
	return worst
}

// freeAt is the first moment at which at least need of reason's dimension
// has expired.
func (v *view) freeAt(reason Reason, need int64) time.Time {
	type event struct{ at, n int64 }
	var events []event
	pick := func(a amount, isClaim bool) int64 {
		switch {
		case reason == ReasonBytes:
			return a.bytes
		case reason == ReasonUploads || isClaim:
			return a.n
		}
		return 0
	}
	v.each(func(w string, s *state) {
		for _, e := range s.claims.from(v.now) {
			events = append(events, event{e.at, pick(e.minus(v.released[claimRef{w, e.at}]), true)})
		}
	})
	for u, a := range v.charged {
		events = append(events, event{u, pick(a.minus(v.credited[u]), false)})
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	freed := int64(0)
	for _, e := range events {
		if freed += e.n; freed >= need {
			return time.Unix(e.at, 0).UTC()
		}
	}
	return time.Time{} // unreachable while used is the sum of the events
}

// reserve grants a reservation of bytes expiring at second expiry, or
// refuses it.
func (v *view) reserve(bytes, expiry int64) *Refusal {
	if r := v.check(bytes, 1, 1); r != nil {
		return r
	}
	v.own.claims.add(expiry, amount{bytes, 1})
	v.own.changed = true
	v.added = append(v.added, addition{v.own, &v.own.claims, expiry, amount{bytes, 1}})
	v.pending = v.pending.plus(amount{bytes, 1})
	return nil
}

// live reports whether r is a reservation that still counts: not
// expired, not settled, and present in its writer's record.
func (v *view) live(r resID) bool {
	s := v.state(r.writer)
	if r.expiry <= v.now || s == nil || v.settledBy(r, true) {
		return false
	}
	ref := claimRef{r.writer, r.expiry}
	net := s.claims.get(r.expiry).minus(v.released[ref])
	return net.n >= 1 && net.bytes >= r.bytes
}

// release settles r in the own kept record: its claim no longer counts.
func (v *view) release(r resID) {
	if !v.settledBy(r, true) {
		ref := claimRef{r.writer, r.expiry}
		v.released[ref] = v.released[ref].plus(amount{r.bytes, 1})
		v.pending = v.pending.minus(amount{r.bytes, 1})
	}
	ref := claimRef{r.writer, r.expiry}
	if _, ok := v.prior[ref]; !ok {
		if v.prior == nil {
			v.prior = map[claimRef]*settledGroup{}
		}
		v.prior[ref] = v.kept.settled[ref]
	}
	v.kept.release(r)
	v.kept.changed = true
}

// settledBy reports whether another writer (or, with own, any writer)
// settled r.
func (v *view) settledBy(r resID, own bool) bool {
	ref := claimRef{r.writer, r.expiry}
	if own && v.kept.settled[ref].has(r.seq) {
		return true
	}
	for _, s := range v.others {
		if s.settled[ref].has(r.seq) {
			return true
		}
	}
	return false
}

// charge records an upload of bytes settled now, counting until second
// until; when checked, only if it fits.
func (v *view) charge(bytes, until int64, checked bool) *Refusal {
	if checked {
		if r := v.check(bytes, 1, 0); r != nil {
			return r
		}
	}
	before := v.charged[until].minus(v.credited[until])
	v.kept.charges.add(until, amount{bytes, 1})
	v.kept.changed = true
	v.added = append(v.added, addition{v.kept, &v.kept.charges, until, amount{bytes, 1}})
	v.charged[until] = v.charged[until].plus(amount{bytes, 1})
	after := v.charged[until].minus(v.credited[until])
	v.chargedUsed = v.chargedUsed.plus(after).minus(before)
	return nil
}

// credit forgives every charge that counts now, in the own kept record.
func (v *view) credit() {
	for u, a := range v.charged {
		net := a.minus(v.credited[u])
		if net != (amount{}) {
			v.kept.credits.add(u, net)
			v.kept.changed = true
			v.credited[u] = v.credited[u].plus(net)
		}
	}
	v.chargedUsed = amount{}
}
