package delivery

import (
	"errors"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	transport := errors.New("connection refused")
	cases := []struct {
		name   string
		status int
		err    error
		want   State
	}{
		{"200", 200, nil, Delivered},
		{"201", 201, nil, Delivered},
		{"204", 204, nil, Delivered},
		{"299", 299, nil, Delivered},
		{"301 redirect", 301, nil, Received},
		{"302 redirect", 302, nil, Received},
		{"304", 304, nil, Received},
		{"400", 400, nil, Refused},
		{"401", 401, nil, Refused},
		{"403", 403, nil, Refused},
		{"404", 404, nil, Refused},
		{"408 timeout", 408, nil, Received},
		{"409", 409, nil, Refused},
		{"413", 413, nil, Refused},
		{"422", 422, nil, Refused},
		{"425 too early", 425, nil, Received},
		{"429 too many", 429, nil, Received},
		{"499", 499, nil, Refused},
		{"500", 500, nil, Received},
		{"502", 502, nil, Received},
		{"503", 503, nil, Received},
		{"504", 504, nil, Received},
		{"599", 599, nil, Received},
		{"transport error", 0, transport, Received},
		{"status with transport error", 200, transport, Received},
		{"no status", 0, nil, Received},
		{"1xx", 100, nil, Received},
		{"out of range", 700, nil, Received},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Classify(c.status, c.err); got != c.want {
				t.Fatalf("Classify(%d, %v) = %s, want %s", c.status, c.err, got, c.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := backoff(i+1, 0.5); got != w {
			t.Fatalf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := backoff(0, 0.5); got != time.Second {
		t.Fatalf("backoff(0) = %v", got)
	}
	for _, n := range []int{11, 12, 20, 21, 1000} {
		if got := backoff(n, 0.5); got != backoffMax {
			t.Fatalf("backoff(%d) = %v, want the cap %v", n, got, backoffMax)
		}
	}
	// ±20 % jitter around the capped value.
	if lo, hi := backoff(3, 0), backoff(3, 0.999999); lo != 3200*time.Millisecond || hi < 4790*time.Millisecond || hi > 4800*time.Millisecond {
		t.Fatalf("jitter bounds for 4 s: %v .. %v", lo, hi)
	}
	if hi := backoff(50, 0.999999); hi > 12*time.Minute {
		t.Fatalf("capped backoff with jitter %v above 12 min", hi)
	}
}

func TestHourCeil(t *testing.T) {
	h := time.Date(2030, 1, 1, 5, 0, 0, 0, time.UTC)
	cases := []struct {
		t    time.Time
		want time.Time
	}{
		{h, h},
		{h.Add(time.Nanosecond), h.Add(time.Hour)},
		{h.Add(time.Second), h.Add(time.Hour)},
		{h.Add(59 * time.Minute), h.Add(time.Hour)},
		{h.Add(-time.Nanosecond), h},
	}
	for _, c := range cases {
		if got := hourCeil(c.t); got != c.want.Unix() {
			t.Fatalf("hourCeil(%v) = %v, want %v", c.t, time.Unix(got, 0).UTC(), c.want)
		}
		if hourCeil(c.t) < c.t.Unix() {
			t.Fatalf("group of %v is before it", c.t)
		}
	}
	gs := groupsFor(h.Add(time.Minute), []time.Time{h.Add(2 * time.Minute), h.Add(-time.Minute), h.Add(time.Hour + time.Minute)})
	if len(gs) != 3 || gs[0] != h.Add(time.Hour).Unix() || gs[1] != h.Unix() || gs[2] != h.Add(2*time.Hour).Unix() {
		t.Fatalf("groupsFor = %v", gs)
	}
}

func TestCheckID(t *testing.T) {
	for _, ok := range []string{"a", "0123abcdef", "A-b_c", string(make([]byte, 0)) + "x"} {
		if err := checkID(ok); err != nil {
			t.Fatalf("checkID(%q) = %v", ok, err)
		}
	}
	long := make([]byte, maxIDLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", "a/b", "..", "a.b", "a b", "é", string(long)} {
		if checkID(bad) == nil {
			t.Fatalf("checkID(%q) accepted", bad)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	send := newApp(time.Now).Send
	st := newMem()
	for name, cfg := range map[string]Config{
		"no storage":     {Prefix: "p", Instance: "i", Send: send},
		"no prefix":      {Storage: st, Instance: "i", Send: send},
		"leading slash":  {Storage: st, Prefix: "/p", Instance: "i", Send: send},
		"trailing slash": {Storage: st, Prefix: "p/", Instance: "i", Send: send},
		"no instance":    {Storage: st, Prefix: "p", Send: send},
		"no send":        {Storage: st, Prefix: "p", Instance: "i"},
	} {
		if _, err := New(cfg); err == nil {
			t.Fatalf("%s: New accepted", name)
		}
	}
	q, err := New(Config{Storage: st, Prefix: "p", Instance: "i", Send: send})
	if err != nil {
		t.Fatal(err)
	}
	if q.lease != DefaultLease || q.retryFor != DefaultRetryFor || q.parallel != DefaultParallel || q.keepDead != DefaultKeepDead {
		t.Fatalf("defaults not applied: %+v", q)
	}
}
