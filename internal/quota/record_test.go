package quota

import (
	"reflect"
	"strings"
	"testing"
)

// A record reads back as written; an entry settled on two lines reads as
// one group; lines unchanged since the last reading reuse their groups.
func TestRecordRoundTrip(t *testing.T) {
	s := newState()
	s.written = 1900000000
	s.claims.add(1900000100, amount{300, 2})
	s.claims.add(1900000050, amount{7, 1})
	s.charges.add(1900003600, amount{1000, 3})
	s.credits.add(1900003600, amount{400, 1})
	for _, r := range []resID{{writer: "wabcdefghijkl", expiry: 1900000100, bytes: 5, seq: 9},
		{writer: "wabcdefghijkl", expiry: 1900000100, bytes: 6, seq: 3},
		{writer: "wmnopqrstuvwx", expiry: 1900000200, bytes: 1, seq: 1}} {
		s.release(r)
	}
	enc := s.encode()
	want := "quota 1 1900000000\nr 1900000050 7 1\nr 1900000100 300 2\nc 1900003600 1000 3\nx 1900003600 400 1\n" +
		"s wabcdefghijkl 1900000100 3:6 9:5\ns wmnopqrstuvwx 1900000200 1:1\n"
	if string(enc) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", enc, want)
	}
	prev := map[string]*settledGroup{}
	got, err := decodeState(enc, nil, prev)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.encode()) != want {
		t.Fatalf("read back as\n%s", got.encode())
	}
	ref := claimRef{"wabcdefghijkl", 1900000100}
	if g := got.settled[ref]; g.total != (amount{11, 2}) || !g.has(3) || !g.has(9) || g.has(4) {
		t.Fatalf("group %+v", g)
	}

	next := map[string]*settledGroup{}
	again, err := decodeState([]byte(strings.Replace(want, "r 1900000050 7 1", "r 1900000050 8 1", 1)), prev, next)
	if err != nil || again.settled[ref] != got.settled[ref] || len(next) != 2 {
		t.Fatalf("an unchanged line was read again (%v)", err)
	}

	split := "quota 1 5\ns wabcdefghijkl 1900000100 9:5\ns wabcdefghijkl 1900000100 3:6 9:5\n"
	for range 2 { // the second time with the lines cached
		merged, err := decodeState([]byte(split), next, next)
		if err != nil || !reflect.DeepEqual(merged.settled[ref].seqs, []seqBytes{{3, 6}, {9, 5}}) || merged.settled[ref].total != (amount{11, 2}) {
			t.Fatalf("split entry read as %+v (%v)", merged.settled[ref], err)
		}
	}
}
