package quota

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// at is a wall-clock moment of the test day (t0 is 00:10:00.25 UTC).
func at(hms string) time.Time {
	t, err := time.Parse("15:04:05", hms)
	if err != nil {
		panic(err)
	}
	return time.Date(2030, 1, 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// step prepares a refusal case: a reservation of bytes until t0+d (rounded
// up to the second), or (d == 0) an upload of bytes settled without one,
// which counts until 01:11:00 (a window of an hour, in slots of a minute).
type step struct {
	bytes int64
	d     time.Duration
}

// Each limit refuses what does not fit, naming the limit, what is used,
// what was asked and when room frees up; a request that can never fit has
// no retry time.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		limits Limits
		before []step
		settle bool // the request is an upload settled without reservation
		bytes  int64
		want   Refusal
		after  time.Duration // RetryAfter at t0
	}{
		{"pending: at the first expiry", Limits{Pending: 2}, []step{{10, 10 * time.Second}, {10, 20 * time.Second}}, false, 1,
			Refusal{ReasonPending, 2, 2, 1, at("00:10:11")}, 11 * time.Second},
		{"uploads: a reservation expires first", Limits{Uploads: 2}, []step{{5, 0}, {5, 30 * time.Second}}, false, 1,
			Refusal{ReasonUploads, 2, 2, 1, at("00:10:31")}, 31 * time.Second},
		{"uploads: the settled one leaves the window first", Limits{Uploads: 2}, []step{{5, 0}, {5, 2 * time.Hour}}, false, 1,
			Refusal{ReasonUploads, 2, 2, 1, at("01:11:00")}, 3660 * time.Second},
		{"bytes: the reservation frees enough", Limits{Bytes: 100}, []step{{60, 0}, {30, 5 * time.Minute}}, false, 20,
			Refusal{ReasonBytes, 100, 90, 20, at("00:15:01")}, 301 * time.Second},
		{"bytes: only with the settled upload", Limits{Bytes: 100}, []step{{60, 0}, {30, 5 * time.Minute}}, false, 50,
			Refusal{ReasonBytes, 100, 90, 50, at("01:11:00")}, 3660 * time.Second},
		{"bytes: never", Limits{Bytes: 100}, []step{{60, 0}}, false, 101,
			Refusal{ReasonBytes, 100, 60, 101, time.Time{}}, 0},
		{"bytes and pending: bytes frees last", Limits{Bytes: 100, Pending: 1}, []step{{50, 0}, {40, 10 * time.Second}}, false, 60,
			Refusal{ReasonBytes, 100, 90, 60, at("01:11:00")}, 3660 * time.Second},
		{"bytes and pending: pending frees last", Limits{Bytes: 100, Pending: 1}, []step{{80, 0}, {10, 2 * time.Hour}}, false, 20,
			Refusal{ReasonPending, 1, 1, 1, at("02:10:01")}, 7201 * time.Second},
		{"bytes never and pending", Limits{Bytes: 100, Pending: 1}, []step{{10, 2 * time.Hour}}, false, 200,
			Refusal{ReasonBytes, 100, 10, 200, time.Time{}}, 0},
		{"settle: bytes", Limits{Bytes: 100}, []step{{70, 0}}, true, 40,
			Refusal{ReasonBytes, 100, 70, 40, at("01:11:00")}, 3660 * time.Second},
		{"settle: uploads", Limits{Uploads: 1, Pending: 1}, []step{{1, 0}}, true, 1,
			Refusal{ReasonUploads, 1, 1, 1, at("01:11:00")}, 3660 * time.Second},
		{"settle: pending is no limit of uploads done", Limits{Uploads: 3, Pending: 1}, []step{{1, time.Minute}}, true, 1,
			Refusal{}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			l := newLedger(t, newMem(), clk, Config{Bytes: c.limits.Bytes, Uploads: c.limits.Uploads,
				Pending: c.limits.Pending, Window: time.Hour})
			for _, s := range c.before {
				var err error
				if s.d == 0 {
					_, err = l.Settle(bg, "k", "", s.bytes)
				} else {
					_, err = l.Reserve(bg, "k", s.bytes, t0.Add(s.d))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			before, _ := l.Usage(bg, "k")
			var err error
			if c.settle {
				_, err = l.Settle(bg, "k", "", c.bytes)
			} else {
				_, err = l.Reserve(bg, "k", c.bytes, t0.Add(time.Hour))
			}
			if c.want == (Refusal{}) {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			got := refusalOf(t, err)
			if !reflect.DeepEqual(*got, c.want) {
				t.Fatalf("refusal %+v, want %+v", *got, c.want)
			}
			if d := got.RetryAfter(clk.Now()); d != c.after {
				t.Fatalf("RetryAfter %v, want %v", d, c.after)
			}
			if after, _ := l.Usage(bg, "k"); after != before {
				t.Fatalf("a refusal changed the usage from %+v to %+v", before, after)
			}
		})
	}
}

// RetryAfter is whole seconds, rounded up, at least one; 0 for never.
func TestRetryAfter(t *testing.T) {
	now := t0
	for _, c := range []struct {
		retryAt time.Time
		want    time.Duration
	}{
		{time.Time{}, 0},
		{now.Add(-time.Minute), time.Second},
		{now, time.Second},
		{now.Add(300 * time.Millisecond), time.Second},
		{now.Add(time.Second), time.Second},
		{now.Add(1200 * time.Millisecond), 2 * time.Second},
		{now.Add(time.Hour + time.Nanosecond), 3601 * time.Second},
	} {
		if got := (&Refusal{RetryAt: c.retryAt}).RetryAfter(now); got != c.want {
			t.Errorf("RetryAfter with RetryAt %v: %v, want %v", c.retryAt.Sub(now), got, c.want)
		}
	}
}

// A refusal reads as what was refused, and is found with errors.As.
func TestRefusalError(t *testing.T) {
	var err error = &Refusal{ReasonBytes, 100, 90, 20, at("00:15:01")}
	if got := err.Error(); got != "quota: bytes: 90 of 100 used, 20 asked; room at 2030-01-01T00:15:01Z" {
		t.Fatalf("message %q", got)
	}
	err = &Refusal{ReasonUploads, 5, 1, 9, time.Time{}}
	if got := err.Error(); !strings.Contains(got, "9 asked exceeds the limit of 5") {
		t.Fatalf("message %q", got)
	}
	var r *Refusal
	if !errors.As(err, &r) || r.Reason != ReasonUploads {
		t.Fatal("errors.As does not find the refusal")
	}
}

// An upload settled with its live reservation replaces it without a
// check, even where usage is over the settling instance's limit (a limit
// lowered since the signing): the upload was allowed when it was signed.
// Larger than reserved, it must fit.
func TestSettleReservedNeedsNoRoom(t *testing.T) {
	st, clk := newMem(), newClock()
	signer := newLedger(t, st, clk, Config{Bytes: 1000})
	lowered := newLedger(t, st, clk, Config{Bytes: 50})
	res := mustReserve(t, signer, "k", 80, t0.Add(time.Minute))
	mustSettle(t, signer, "k", "", 15)
	s, err := lowered.Settle(bg, "k", res.ID, 70)
	if err != nil || !s.Reserved || s.Usage.Bytes != 85 {
		t.Fatalf("settle: %+v, %v; want reserved with 85 bytes used", s, err)
	}

	res = mustReserve(t, signer, "k", 10, t0.Add(time.Minute))
	_, err = lowered.Settle(bg, "k", res.ID, 11)
	if r := refusalOf(t, err); r.Used != 85 || r.Asked != 11 {
		t.Fatalf("refusal %+v, want 85 used and 11 asked", r)
	}
	if u, _ := lowered.Usage(bg, "k"); u.Pending != 0 || u.Bytes != 85 {
		t.Fatalf("usage %+v: the reservation should be used up and nothing charged", u)
	}
}
