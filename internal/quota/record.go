package quota

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// state is one writer's record for one key.
type state struct {
	// claims are the writer's reservations (n of them) by expiry second.
	claims entries
	// charges are the uploads the writer settled (n of them), by the
	// second they leave the window.
	charges entries
	// credits are what the writer's Resets forgave, by the same seconds
	// as charges: every writer's credits are taken off every writer's
	// charges of that second.
	credits entries
	// settled are the reservations, of any writer, that this writer
	// settled, by claim entry: each releases its claim once, however many
	// writers settled it. Kept until the claim entry's expiry.
	settled map[claimRef]*settledGroup
	// written is when the record was written (Unix seconds), by its
	// writer's clock.
	written int64
	// changed (in memory only) is set by what changes an own record
	// other than expiry, and cleared when it is written.
	changed bool
}

func newState() *state { return &state{settled: map[claimRef]*settledGroup{}} }

// release records that this writer settled reservation r.
func (s *state) release(r resID) {
	ref := claimRef{r.writer, r.expiry}
	s.settled[ref] = s.settled[ref].with(r.seq, r.bytes)
}

// prune drops what no longer counts at second now.
func (s *state) prune(now int64) {
	s.claims, s.charges, s.credits = s.claims.from(now), s.charges.from(now), s.credits.from(now)
	maps.DeleteFunc(s.settled, func(ref claimRef, _ *settledGroup) bool { return ref.expiry <= now })
}

// empty reports whether s holds nothing that counts at second now.
func (s *state) empty(now int64) bool {
	if len(s.claims.from(now))+len(s.charges.from(now))+len(s.credits.from(now)) > 0 {
		return false
	}
	for ref := range s.settled {
		if ref.expiry > now {
			return false
		}
	}
	return true
}

// A record is stored as lines of text: a header with the format version
// and the time it was written, then one line per claim, charge and credit
// (the second, bytes and count) and one per claim entry with settled
// reservations (their sequence numbers and bytes):
//
//	quota 1 <written>
//	r <expiry> <bytes> <reservations>
//	c <end of window> <bytes> <uploads>
//	x <end of window> <bytes> <uploads>
//	s <writer> <expiry> <seq>:<bytes> <seq>:<bytes> ...
//
// A record of another version is refused, never read as empty, and so is
// one cut short (every record ends with a newline; but see decodeRecord).
const recordHeader = "quota 1 "

func (s *state) encode() []byte {
	size := 32
	for _, g := range s.settled {
		size += len(g.line) + 20*len(g.seqs)
	}
	b := make([]byte, 0, size+32*(len(s.claims)+len(s.charges)+len(s.credits)))
	b = strconv.AppendInt(append(b, recordHeader...), s.written, 10)
	b = s.claims.appendLines(b, 'r')
	b = s.charges.appendLines(b, 'c')
	b = s.credits.appendLines(b, 'x')
	refs := slices.SortedFunc(maps.Keys(s.settled), func(a, b claimRef) int {
		return cmp.Or(cmp.Compare(a.expiry, b.expiry), cmp.Compare(a.writer, b.writer))
	})
	for _, ref := range refs {
		b = s.settled[ref].appendLine(b, ref)
	}
	return append(b, '\n')
}

// decodeState reads a record. Settled groups whose line is in prev (the
// groups of the writer's record as last read, by line) are reused, not
// parsed again; the groups read are left in next.
func decodeState(b []byte, prev, next map[string]*settledGroup) (*state, error) {
	rest, ok := bytes.CutPrefix(b, []byte(recordHeader))
	if !ok {
		head, _, _ := bytes.Cut(b, []byte("\n"))
		return nil, fmt.Errorf("header %.40q, not %q", head, recordHeader+"<written>")
	}
	if b[len(b)-1] != '\n' {
		return nil, errors.New("cut short: no newline at its end")
	}
	s := newState()
	line, rest, _ := bytes.Cut(rest, []byte("\n"))
	var err error
	if s.written, err = strconv.ParseInt(string(line), 10, 64); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		fields := bytes.Fields(line)
		if len(fields) < 3 || len(fields[0]) != 1 {
			return nil, fmt.Errorf("line %.40q", line)
		}
		var es *entries
		switch fields[0][0] {
		case 's':
			ref := claimRef{writer: string(fields[1])}
			if ref.expiry, err = strconv.ParseInt(string(fields[2]), 10, 64); err != nil {
				return nil, fmt.Errorf("line %.40q: %w", line, err)
			}
			g := prev[string(line)]
			if g == nil || s.settled[ref] != nil {
				if g, err = s.decodeSettled(ref, fields[3:]); err != nil {
					return nil, fmt.Errorf("line %.40q: %w", line, err)
				}
			}
			s.settled[ref] = g
			next[string(line)] = g
			continue
		case 'r':
			es = &s.claims
		case 'c':
			es = &s.charges
		case 'x':
			es = &s.credits
		}
		var nums [3]int64
		if es == nil || len(fields) != 4 {
			return nil, fmt.Errorf("line %.40q", line)
		}
		for i, f := range fields[1:] {
			if nums[i], err = strconv.ParseInt(string(f), 10, 64); err != nil {
				return nil, fmt.Errorf("line %.40q: %w", line, err)
			}
			if i > 0 && nums[i] < 0 {
				return nil, fmt.Errorf("line %.40q: negative amount", line)
			}
		}
		es.add(nums[0], amount{nums[1], nums[2]})
	}
	return s, nil
}

// decodeSettled reads the reservations of an "s" line for the claim entry
// ref, adding the group already read for the same entry, if any.
func (s *state) decodeSettled(ref claimRef, fields [][]byte) (*settledGroup, error) {
	if !validWriter(ref.writer) {
		return nil, ErrMalformedID
	}
	g := &settledGroup{seqs: make([]seqBytes, 0, len(fields))}
	for _, f := range fields {
		seq, bytes, ok := bytes.Cut(f, []byte(":"))
		n, err1 := strconv.ParseUint(string(seq), 10, 64)
		b, err2 := strconv.ParseInt(string(bytes), 10, 64)
		if !ok || err1 != nil || err2 != nil || b < 0 {
			return nil, fmt.Errorf("settled reservation %.40q", f)
		}
		g.seqs = append(g.seqs, seqBytes{n, b})
	}
	if prev := s.settled[ref]; prev != nil { // the same entry on two lines
		g.seqs = append(g.seqs, prev.seqs...)
	}
	slices.SortFunc(g.seqs, func(a, b seqBytes) int { return cmp.Compare(a.seq, b.seq) })
	g.seqs = slices.CompactFunc(g.seqs, func(a, b seqBytes) bool { return a.seq == b.seq })
	for _, sb := range g.seqs {
		g.total = g.total.plus(amount{sb.bytes, 1})
	}
	return g, nil
}
