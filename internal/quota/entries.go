package quota

import (
	"slices"
	"strconv"
)

// amount is bytes and a count (of reservations or uploads).
type amount struct{ bytes, n int64 }

func (a amount) plus(b amount) amount { return amount{a.bytes + b.bytes, a.n + b.n} }

// minus is a − b, each part floored at 0.
func (a amount) minus(b amount) amount {
	return amount{max(0, a.bytes-b.bytes), max(0, a.n-b.n)}
}

// entry is an amount that counts while its second (at) is after the
// current whole second.
type entry struct {
	at int64 // Unix seconds
	amount
	line []byte // the entry's record line, once written; nil after a change
}

// entries are sorted by at, one per second. New entries mostly come last
// (later expiries, later windows), so adding is cheap, cloning is a copy
// and writing needs no sort.
type entries []entry

func (es entries) find(at int64) (int, bool) {
	return slices.BinarySearchFunc(es, at, func(e entry, at int64) int { return int(max(-1, min(1, e.at-at))) })
}

func (es entries) get(at int64) amount {
	if i, ok := es.find(at); ok {
		return es[i].amount
	}
	return amount{}
}

func (es *entries) add(at int64, a amount) {
	i, ok := es.find(at)
	if ok {
		(*es)[i].amount = (*es)[i].plus(a)
		(*es)[i].line = nil
		return
	}
	*es = slices.Insert(*es, i, entry{at: at, amount: a})
}

// remove takes a, which add added, back from the entry of at; an entry
// left empty is dropped.
func (es *entries) remove(at int64, a amount) {
	i, ok := es.find(at)
	if !ok {
		return
	}
	e := &(*es)[i]
	e.amount, e.line = amount{e.bytes - a.bytes, e.n - a.n}, nil
	if e.amount == (amount{}) {
		*es = slices.Delete(*es, i, i+1)
	}
}

// from is the part of es that counts at second now.
func (es entries) from(now int64) entries {
	i, _ := es.find(now + 1)
	return es[i:]
}

// appendLines appends es as record lines of kind, reusing each entry's
// line when it has not changed since it was last written.
func (es entries) appendLines(b []byte, kind byte) []byte {
	for i := range es {
		e := &es[i]
		if e.line == nil {
			l := make([]byte, 0, 32)
			l = append(l, '\n', kind, ' ')
			l = strconv.AppendInt(l, e.at, 10)
			l = strconv.AppendInt(append(l, ' '), e.bytes, 10)
			e.line = strconv.AppendInt(append(l, ' '), e.n, 10)
		}
		b = append(b, e.line...)
	}
	return b
}

// claimRef names one claim entry: a writer's reservations of one expiry
// second (for one key).
type claimRef struct {
	writer string
	expiry int64
}

// seqBytes is a settled reservation of a claim entry: its sequence number
// and bytes.
type seqBytes struct {
	seq   uint64
	bytes int64
}

// settledGroup is the reservations of one claim entry that one writer
// settled. A group never changes once built (with builds a new one), so
// states share groups and a group's record line is built once.
type settledGroup struct {
	total amount     // their bytes and count
	seqs  []seqBytes // sorted by seq, without repeats
	line  []byte     // the group's record line, once written
}

func (g *settledGroup) has(seq uint64) bool {
	if g == nil {
		return false
	}
	_, ok := slices.BinarySearchFunc(g.seqs, seq, cmpSeq)
	return ok
}

func cmpSeq(s seqBytes, seq uint64) int {
	switch {
	case s.seq < seq:
		return -1
	case s.seq > seq:
		return 1
	}
	return 0
}

// with is g (which may be nil) with seq of bytes added.
func (g *settledGroup) with(seq uint64, bytes int64) *settledGroup {
	n := &settledGroup{total: amount{bytes, 1}}
	if g != nil {
		n.total = n.total.plus(g.total)
		n.seqs = make([]seqBytes, len(g.seqs), len(g.seqs)+1)
		copy(n.seqs, g.seqs)
	}
	i, _ := slices.BinarySearchFunc(n.seqs, seq, cmpSeq)
	n.seqs = slices.Insert(n.seqs, i, seqBytes{seq, bytes})
	return n
}

// appendLine appends g as the record line of the claim entry ref.
func (g *settledGroup) appendLine(b []byte, ref claimRef) []byte {
	if g.line == nil {
		l := make([]byte, 0, 32+20*len(g.seqs))
		l = append(append(append(l, "\ns "...), ref.writer...), ' ')
		l = strconv.AppendInt(l, ref.expiry, 10)
		for _, s := range g.seqs {
			l = strconv.AppendUint(append(l, ' '), s.seq, 10)
			l = strconv.AppendInt(append(l, ':'), s.bytes, 10)
		}
		g.line = l
	}
	return append(b, g.line...)
}

// overlapMemo remembers the overlap of pairs of groups (groups never
// change, so a pair's overlap never does), for the views of one key: a
// claim entry settled on two instances is deduplicated once, not in every
// round. Pairs not used in a round are forgotten after the next.
type overlapMemo struct {
	last, cur map[[2]*settledGroup]amount
}

// round starts a new round: what the last one did not use is dropped.
func (m *overlapMemo) round() { m.last, m.cur = m.cur, map[[2]*settledGroup]amount{} }

// unique is what g adds to the groups of ref in done: its reservations
// that none of them holds.
func (m *overlapMemo) unique(g *settledGroup, ref claimRef, done []*state) amount {
	var prev []*settledGroup
	for _, d := range done {
		if p := d.settled[ref]; p != nil {
			prev = append(prev, p)
		}
	}
	if len(prev) != 1 || m == nil {
		var add amount
		for _, sb := range g.seqs {
			if !slices.ContainsFunc(prev, func(p *settledGroup) bool { return p.has(sb.seq) }) {
				add = add.plus(amount{sb.bytes, 1})
			}
		}
		return add
	}
	key := [2]*settledGroup{prev[0], g}
	common, ok := m.cur[key]
	if !ok {
		if common, ok = m.last[key]; !ok {
			common = intersect(prev[0], g)
		}
		if m.cur == nil {
			m.cur = map[[2]*settledGroup]amount{}
		}
		m.cur[key] = common
	}
	return g.total.minus(common)
}

// intersect is what a and b have in common (both sorted by seq).
func intersect(a, b *settledGroup) amount {
	var common amount
	for i, j := 0, 0; i < len(a.seqs) && j < len(b.seqs); {
		switch x, y := a.seqs[i].seq, b.seqs[j].seq; {
		case x < y:
			i++
		case x > y:
			j++
		default:
			common = common.plus(amount{b.seqs[j].bytes, 1})
			i, j = i+1, j+1
		}
	}
	return common
}
