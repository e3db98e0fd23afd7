package delivery

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// settleAt records a settled event expiring at exp, as the queue would.
func settleAt(t *testing.T, h *harness, id string, exp time.Time, status int) {
	t.Helper()
	ev := h.event(id)
	ev.Expires = exp
	h.claim(ev, time.Second)
	if _, err := h.q.Settle(context.Background(), ev, status, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// Expired hour groups go with one Delete each; the records of groups still
// ahead stay; purging reads no record.
func TestPurgeDeletesExpiredGroupsOnly(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, newMem(), newClock(), "inst-a", func(c *Config) { c.KeepDead = 24 * time.Hour })
	h.q.purge(ctx) // the first purge probes the storage
	if h.q.purgeEach {
		t.Fatal("a storage deleting directories recursively was taken for one that does not")
	}

	var expired, kept []string
	for hour := range 5 { // groups at t0's hour +1 .. +5
		exp := t0.Truncate(time.Hour).Add(time.Duration(hour)*time.Hour + 30*time.Minute)
		for i := range 20 {
			id := fmt.Sprintf("h%d-%d", hour, i)
			settleAt(t, h, id, exp, 200+i%2*200) // delivered and refused alike
			key := fmt.Sprintf("%s/done/%d/%s", testPrefix, hourCeil(exp), id)
			if hour < 3 {
				expired = append(expired, key)
			} else {
				kept = append(kept, key)
			}
		}
	}
	// Dead records: one group past KeepDead, one within it.
	oldDead := fmt.Sprintf("%s/dead/%d/d1", testPrefix, hourCeil(t0)-25*3600)
	newDead := fmt.Sprintf("%s/dead/%d/d2", testPrefix, hourCeil(t0)-20*3600)
	for _, k := range []string{oldDead, newDead} {
		if err := h.st.Store(ctx, k, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}

	h.clk.Advance(3 * time.Hour) // now past the first three groups' hours
	h.st.resetOps()
	h.q.purge(ctx)
	if n := h.st.count("delete", ""); n != 4 {
		t.Fatalf("%d deletes, want 4 (3 done groups, 1 dead group)", n)
	}
	if n := h.st.count("load", "") + h.st.count("store", ""); n != 0 {
		t.Fatalf("purging read or wrote %d records", n)
	}
	if n := h.st.count("list", ""); n != 2 {
		t.Fatalf("%d lists, want 2 (the group names of done/ and dead/)", n)
	}
	for _, k := range expired {
		if h.st.has(k) {
			t.Fatalf("%s survived its group's expiry", k)
		}
	}
	for _, k := range append(kept, newDead) {
		if !h.st.has(k) {
			t.Fatalf("%s was purged before its time", k)
		}
	}
	if h.st.has(oldDead) {
		t.Fatal("a dead record past KeepDead survived")
	}
	// kept[0] expired at 03:30 but its group is 04:00: it stays until then.
	h.clk.Advance(49 * time.Minute) // 03:59
	h.q.purge(ctx)
	if !h.st.has(kept[0]) || !h.st.has(newDead) {
		t.Fatal("purged before its group's hour")
	}
	h.clk.Advance(time.Minute) // 04:00
	h.q.purge(ctx)
	if h.st.has(kept[0]) || !h.st.has(kept[len(kept)-1]) {
		t.Fatal("the 04:00 group was not purged at 04:00, or the 05:00 group was")
	}
}

// A storage that deletes only the named key (not the keys below it): the
// probe notices, and expired groups are deleted record by record, so none
// is left behind unlisted.
func TestPurgeOnStorageKeepingDirectoryKeys(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	st.flat = true
	h := newHarness(t, st, newClock(), "inst-a")
	exp := t0.Add(30 * time.Minute)
	for i := range 5 {
		settleAt(t, h, fmt.Sprintf("e%d", i), exp, 200)
	}
	h.clk.Advance(2 * time.Hour)
	h.q.purge(ctx)
	if !h.q.purgeEach {
		t.Fatal("the probe did not notice that Delete keeps a directory's keys")
	}
	for i := range 5 {
		if k := fmt.Sprintf("%s/done/%d/e%d", testPrefix, hourCeil(exp), i); st.has(k) {
			t.Fatalf("%s left behind", k)
		}
	}
	if st.has(testPrefix+"/probe") || len(st.keys(testPrefix+"/probe")) != 0 {
		t.Fatal("the probe record was left behind")
	}
}

// Run purges at start and then every 10 minutes; a failing purge is logged.
func TestRunPurgesAtStartAndEveryTenMinutes(t *testing.T) {
	h := newHarness(t, newMem(), newClock(), "inst-a")
	h.drive(1, 0)
	if h.st.count("list", "/done") != 1 {
		t.Fatal("no purge at start")
	}
	h.drive(9*60, time.Second)
	if n := h.st.count("list", "/done"); n != 1 {
		t.Fatalf("%d purges within 10 minutes, want 1", n)
	}
	h.drive(61, time.Second)
	if n := h.st.count("list", "/done"); n != 2 {
		t.Fatalf("%d purges after 10 minutes, want 2", n)
	}
	h.st.setFault(failOn("/done", "list"))
	h.drive(10*60+1, time.Second)
	h.requireCause("listing record groups to purge failed")
}
