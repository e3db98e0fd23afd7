package caddyoss

// Room comes back: a reservation nobody uploads with ends with its
// signature, and a verified upload leaves the window after W plus at most
// one slot. The tests poll with a deadline and assert what the answers
// say, not how long anything took.

import (
	"testing"
	"time"
)

// A reservation whose signature expires unused frees its room at the
// retry_at its refusal named; no grant comes before.
func TestQuotaRoomAfterExpiry(t *testing.T) {
	// expires may not be shorter than 1s.
	e := newQuotaEnv(t, "", "uploads 1 per 1h\npending 1", confirmOpts{extra: "expires 1s"})
	for _, route := range []struct{ name, target, label string }{
		{"post-policy", qPolicy + "&size=10", signRoutePostPolicy},
		{"presign", qPresign, signRoutePresign},
		{"uppy params", qParams, signRouteUppy},
	} {
		t.Run(route.name, func(t *testing.T) {
			t.Parallel() // one user each
			user := "user-" + route.label
			before := refusals(route.label, "uploads")
			a := e.sign(t, route.target, user, nil).granted(t, "first")
			checkRemaining(t, a, qNoHeader, 0, 0)
			// The reservation lives until the signature's expiry, rounded
			// up to a whole second: [before+1s, after+2s].
			retryAt := checkRefused(t, e.sign(t, route.target, user, nil), want429{reason: "uploads", limit: 1, used: 1, asked: 1,
				retryFrom: a.before.Add(time.Second), retryTo: a.after.Add(2 * time.Second)})
			if n := refusals(route.label, "uploads") - before; n != 1 {
				t.Errorf("caddy_oss_quota_refusals_total{%s,uploads} rose by %v, want 1", route.label, n)
			}
			eventually(t, 10*time.Second, "the reservation expires", func() bool {
				u := e.usage(t, user)
				if u.Pending == 0 && u.At.Before(retryAt) {
					t.Fatalf("the reservation ended at %s, before the retry_at %s its refusal named", u.At, retryAt)
				}
				return u.Pending == 0 && u.Uploads == 0
			})
			g := e.sign(t, route.target, user, nil).granted(t, "after the expiry")
			checkRemaining(t, g, qNoHeader, 0, 0)
			if g.reservation(t) == a.reservation(t) {
				t.Error("the new grant repeats the expired reservation's id")
			}
		})
	}
}

// A verified upload counts for the window plus at most one slot (W/60,
// at least 1 s): with "uploads 2 per 3s" the room of the first upload
// comes back 4 s after the second it was settled in.
func TestQuotaRoomAfterWindow(t *testing.T) {
	e := newQuotaEnv(t, "", "uploads 2 per 3s", confirmOpts{})
	var starts, ends []time.Time
	for i := 0; i < 2; i++ {
		starts = append(starts, time.Now())
		if up := e.postObject(t, "alice", "a.png", "image/png", randomBytes(50)); up.status != 200 {
			t.Fatalf("upload %d: %d %s", i, up.status, up.answer)
		}
		ends = append(ends, time.Now())
	}
	e.checkUsage(t, "alice", 100, 2, 0)
	retryAt := checkRefused(t, e.sign(t, qPolicy, "alice", nil), want429{reason: "uploads", limit: 2, used: 2, asked: 1,
		retryFrom: starts[0].Truncate(time.Second).Add(4 * time.Second), retryTo: ends[0].Truncate(time.Second).Add(4 * time.Second)})
	var g signAnswer
	eventually(t, 10*time.Second, "the first upload leaves the window", func() bool {
		g = e.sign(t, qPolicy, "alice", nil)
		if g.status == 200 {
			return true
		}
		checkRefused(t, g, want429{reason: "uploads", limit: 2, used: 2, asked: 1, retryFrom: retryAt, retryTo: retryAt})
		return false
	})
	if g.after.Before(retryAt) {
		t.Errorf("granted at %s, before the retry_at %s", g.after, retryAt)
	}
	// Both uploads may have been settled in the same second.
	if left := g.header.Get("X-Quota-Remaining-Uploads"); left != "0" && left != "1" {
		t.Errorf("X-Quota-Remaining-Uploads %q, want 0 or 1", left)
	}
	// The second upload leaves too; the grant's reservation stays.
	eventually(t, 10*time.Second, "the second upload leaves the window", func() bool {
		u := e.usage(t, "alice")
		return u.Uploads == 1 && u.Pending == 1 && u.Bytes == u.PendingBytes
	})
}
