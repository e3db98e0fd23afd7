package clustertest

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/quota"
	"github.com/caddy-oss/caddy-oss/internal/redistest"
)

// quotaCase is one quota block of the cluster quota test.
type quotaCase struct {
	name   string
	block  string       // the quota block's limits
	limits quota.Limits // the same limits
	sizes  []int64      // declared sizes of the requests sent at once, in turn (0: none, so max_size)
	fill   int64        // declared size of the requests sent one by one
	rounds int
}

// quotaMaxSize is the site's max_size (1KB): what a request without a
// declared size reserves.
const quotaMaxSize = 1000

// quotaHammer is how many signing requests are sent at once, half to each
// instance.
const quotaHammer = 64

// Two instances of one site with a quota share only Caddy's storage, and
// one user signs on both. Round after round:
//   - every upload signed and not yet verified is uploaded and verified on
//     the other instance than the one that signed it (its confirm or its
//     callback), then its other copy is sent to the signer (a duplicate,
//     charged nothing);
//   - one signing on each instance is answered with the X-Quota-Remaining-*
//     headers that the granted answers and the verified sizes add up to,
//     so both instances count the settlement made on the other;
//   - 64 signing requests at once, half on each instance, are granted no
//     more than the limits leave (no overshoot at all) and the others are
//     refused with 429, Retry-After and the refusal's fields;
//   - signing one by one, alternating instances, fills the room left to
//     the last: every header is exact, and a refusal's "used" is what the
//     granted answers add up to.
//
// Every verified upload reaches the app once. On the file system and on a
// real redis-server.
func TestQuotaAcrossInstances(t *testing.T) {
	cases := []quotaCase{
		{name: "uploads and pending", block: "uploads 20 per 1h\n\t\t\tpending 6",
			limits: quota.Limits{Uploads: 20, Pending: 6}, sizes: []int64{0}, rounds: 5},
		{name: "bytes", block: "bytes 10KB per 1h",
			limits: quota.Limits{Bytes: 10000}, sizes: []int64{100, 400, 0}, fill: 100, rounds: 4},
	}
	for _, backend := range []string{"file_system", "redis"} {
		for _, c := range cases {
			t.Run(backend+"/"+c.name, func(t *testing.T) {
				storage := "storage file_system " + t.TempDir()
				if backend == "redis" {
					storage = "storage " + redisModule(redistest.Start(t).Addr)
				}
				quotaAcrossInstances(t, [2]string{storage, storage}, c)
			})
		}
	}
}

func quotaAcrossInstances(t *testing.T, storage [2]string, c quotaCase) {
	q := startQuotaRun(t, storage, c)
	for round := 1; round <= c.rounds; round++ {
		q.settle()
		for i := range q.ins {
			q.exact(i, c.fill)
		}
		q.hammer()
		q.fill()
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
		u := q.usage()
		t.Logf("round %d: %d granted in all; used: %d bytes, %d uploads, %d pending", round, len(q.grants), u.Bytes, u.Uploads, u.Pending)
	}
	q.settle()
	for i := range q.ins {
		q.exact(i, c.fill)
	}
	// Every verified upload reached the app once, and nothing else did.
	time.Sleep(300 * time.Millisecond)
	got := q.app.delivered()
	verified := 0
	for _, g := range q.grants {
		if g.size >= 0 {
			verified++
			if got[g.key] != 1 {
				t.Errorf("%s reached the app %d times, want once", g.key, got[g.key])
			}
		}
	}
	q.app.mu.Lock()
	defer q.app.mu.Unlock()
	if len(got) != verified || q.app.unverified != 0 {
		t.Errorf("the app received %d objects (%d verified uploads) and %d unverified requests", len(got), verified, q.app.unverified)
	}
}

// hammer sends quotaHammer signing requests at once, half to each
// instance: the grants never exceed what the limits leave, and every
// other answer is a well-formed 429.
func (q *quotaRun) hammer() {
	t := q.t
	sizes := q.c.sizes
	answers := make([]signAnswer, quotaHammer)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			<-start
			answers[i] = q.sign(i%2, sizes[i%len(sizes)])
		})
	}
	close(start)
	wg.Wait()
	granted := [2]int{}
	for i, a := range answers {
		switch a.status {
		case http.StatusOK:
			q.grants = append(q.grants, a.grant)
			granted[a.grant.on]++
		case http.StatusTooManyRequests:
			q.checkRefusal(a, nil)
		default:
			t.Errorf("request %d at once on instance %d: %d %s", i, i%2, a.status, a.body)
		}
	}
	u := q.usage()
	for _, d := range q.dims() {
		if d.limit > 0 && d.used(u) > d.limit {
			t.Errorf("%d + %d granted at once on the two instances: %d %s counted, over the limit of %d",
				granted[0], granted[1], d.used(u), d.name, d.limit)
		}
	}
	t.Logf("at once: %d + %d of %d granted", granted[0], granted[1], quotaHammer)
}

// fill signs one by one, alternating instances, until each instance has
// refused once in a row: the room the limits leave is used to the last.
func (q *quotaRun) fill() {
	refusedInRow := 0
	for i := 0; refusedInRow < 2; i++ {
		if i > 200 {
			q.t.Fatal("one-by-one signing never filled the quota")
		}
		if q.exact(i%2, q.c.fill) {
			refusedInRow = 0
		} else {
			refusedInRow++
		}
	}
}

// exact signs one upload on instance i, alone: a grant's
// X-Quota-Remaining-* headers, and a refusal's "used", are what the
// granted answers and the verified sizes add up to; a refusal leaves no
// room for the request. It reports whether the upload was granted.
func (q *quotaRun) exact(i int, size int64) bool {
	t := q.t
	a := q.sign(i, size)
	switch a.status {
	case http.StatusOK:
		q.grants = append(q.grants, a.grant)
		u := q.usage()
		for _, d := range q.dims() {
			want := fmt.Sprint(max(0, d.limit-d.used(u)))
			if d.limit == 0 {
				want = ""
			}
			if got := a.header.Get(d.header); got != want {
				t.Errorf("instance %d granted with %s: %q, want %q (%d of %d used)", i, d.header, got, want, d.used(u), d.limit)
			}
		}
		return true
	case http.StatusTooManyRequests:
		u := q.usage()
		q.checkRefusal(a, &u)
		return false
	}
	t.Errorf("instance %d: %d %s", i, a.status, a.body)
	return false
}

// checkRefusal checks a 429: Retry-After (whole seconds, at least one; room
// frees up as reservations expire and uploads leave the window), a reason
// with its limit, and a "used" over what the request fits in. With u,
// "used" must be exactly u's.
func (q *quotaRun) checkRefusal(a signAnswer, u *quota.Usage) {
	t := q.t
	r := a.refusal
	if r == nil {
		t.Errorf("429 without the quota's fields: %s", a.body)
		return
	}
	var d *quotaDim
	for _, x := range q.dims() {
		if x.name == r.Quota.Reason {
			d = &x
		}
	}
	retry := a.header.Get("Retry-After")
	switch {
	case d == nil:
		t.Errorf("refused for %q, which has no limit here: %s", r.Quota.Reason, a.body)
	case r.Quota.Limit != d.limit || r.Quota.Used+r.Quota.Asked <= d.limit:
		t.Errorf("refused although it fits the limit of %d: %s", d.limit, a.body)
	case retry == "" || retry == "0" || r.Quota.RetryAfter == nil || fmt.Sprint(*r.Quota.RetryAfter) != retry || r.Quota.RetryAt == "":
		t.Errorf("refused with Retry-After %q: %s", retry, a.body)
	case u != nil && r.Quota.Used != d.used(*u):
		t.Errorf("refused on instance %d with %d %s used, want %d: %s", a.on, r.Quota.Used, d.name, d.used(*u), a.body)
	}
}
