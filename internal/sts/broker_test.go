package sts

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/sts/ststest"
)

// clock is a broker's clock in a test: the time it was made, moved on by
// add.
type clock struct {
	start time.Time
	ahead atomic.Int64 // time.Duration
}

func (c *clock) now() time.Time      { return c.start.Add(time.Duration(c.ahead.Load())) }
func (c *clock) add(d time.Duration) { c.ahead.Add(int64(d)) }

// newTestBroker builds a broker with the real STS SDK client pointed at f,
// whose credentials expire an hour after the broker's clock starts.
func newTestBroker(t testing.TB, f *ststest.Server, cacheSize int) (*Broker, *clock) {
	t.Helper()
	cred, err := credentials.NewCredential(new(credentials.Config).SetType("access_key").
		SetAccessKeyId(ststest.AccessKeyID).SetAccessKeySecret("testsecret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{RoleARN: "acs:ram::123:role/up", Duration: time.Hour,
		RefreshBefore: 5 * time.Minute, Endpoint: f.URL, CacheSize: cacheSize}
	m := Metrics{
		FromCache:        prometheus.NewCounter(prometheus.CounterOpts{Name: "from_cache"}),
		FromAssumeRole:   prometheus.NewCounter(prometheus.CounterOpts{Name: "from_assume_role"}),
		AssumeRoleErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "assume_role_errors"}),
	}
	b, err := New(cfg, "cn-hangzhou", cred, zap.NewNop(), m)
	if err != nil {
		t.Fatal(err)
	}
	clock := &clock{start: time.Now()}
	b.Now = clock.now
	f.Set(func(f *ststest.Server) { f.Expiration = clock.now().Add(time.Hour) })
	return b, clock
}

func TestSTSConcurrentMissesMakeOneCall(t *testing.T) {
	f := ststest.NewServer(t)
	hold := make(chan struct{})
	f.Set(func(f *ststest.Server) { f.Hold = hold })
	b, _ := newTestBroker(t, f, 16)
	const n = 200
	results := make(chan Issued, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b.Get(context.Background(), "alice", `{"p":1}`)
			if err != nil {
				errs <- err
				return
			}
			results <- c
		}()
	}
	// Wait until the single call has reached the fake, then release it.
	for f.Calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := f.Calls.Load(); got != 1 {
		t.Fatalf("AssumeRole calls = %d, want 1", got)
	}
	count := 0
	for c := range results {
		count++
		if c.ID != "STS.key1" || c.Token != "CAIStoken1" {
			t.Errorf("credentials %+v", c)
		}
	}
	if count != n {
		t.Errorf("%d results", count)
	}
	q := f.LastQuery
	if q["RoleSessionName"] != "alice" || q["Policy"] != `{"p":1}` || q["DurationSeconds"] != "3600" || q["RoleArn"] != "acs:ram::123:role/up" {
		t.Errorf("AssumeRole parameters %v", q)
	}
}

func TestSTSCacheKeys(t *testing.T) {
	f := ststest.NewServer(t)
	b, _ := newTestBroker(t, f, 16)
	ctx := context.Background()
	a1, _ := b.Get(ctx, "alice", "p1")
	a2, _ := b.Get(ctx, "alice", "p1")
	bob, _ := b.Get(ctx, "bob", "p1")
	p2, _ := b.Get(ctx, "alice", "p2")
	if !sameCreds(a1, a2) || sameCreds(a1, bob) || sameCreds(a1, p2) || sameCreds(bob, p2) || f.Calls.Load() != 3 {
		t.Errorf("calls %d, a1 %v a2 %v bob %v p2 %v", f.Calls.Load(), a1, a2, bob, p2)
	}
	// The route logs where credentials came from.
	if a1.Source != SourceAssumeRole || a2.Source != SourceCache || bob.Source != SourceAssumeRole {
		t.Errorf("sources %q %q %q", a1.Source, a2.Source, bob.Source)
	}
}

// sameCreds compares credentials, not where Get found them.
func sameCreds(a, b Issued) bool {
	a.Source, b.Source = "", ""
	return a == b
}

func TestSTSRefreshAhead(t *testing.T) {
	f := ststest.NewServer(t)
	b, clock := newTestBroker(t, f, 16)
	ctx := context.Background()
	first, err := b.Get(ctx, "s", "p")
	if err != nil {
		t.Fatal(err)
	}
	// Inside the refresh window the cached credential is served at once and
	// a refresh starts.
	f.Set(func(f *ststest.Server) { f.Expiration = clock.now().Add(2 * time.Hour) })
	clock.add(56 * time.Minute)
	c, err := b.Get(ctx, "s", "p")
	if err != nil || !sameCreds(c, first) || c.Source != SourceCache {
		t.Fatalf("refresh window: %v %v", c, err)
	}
	ststest.WaitFor(t, func() bool { return b.Idle() && f.Calls.Load() == 2 })
	c, err = b.Get(ctx, "s", "p")
	if err != nil || c.ID != "STS.key2" {
		t.Fatalf("after refresh: %v %v", c, err)
	}
	if f.Calls.Load() != 2 {
		t.Errorf("calls = %d", f.Calls.Load())
	}
}

func TestSTSExpiredEntryIsRefetched(t *testing.T) {
	f := ststest.NewServer(t)
	b, clock := newTestBroker(t, f, 16)
	ctx := context.Background()
	if _, err := b.Get(ctx, "s", "p"); err != nil {
		t.Fatal(err)
	}
	clock.add(2 * time.Hour)
	f.Set(func(f *ststest.Server) { f.Expiration = clock.now().Add(time.Hour) })
	c, err := b.Get(ctx, "s", "p")
	if err != nil || c.ID != "STS.key2" {
		t.Fatalf("%v %v", c, err)
	}
}

func TestSTSDownServesValidCachedCredential(t *testing.T) {
	f := ststest.NewServer(t)
	b, clock := newTestBroker(t, f, 16)
	ctx := context.Background()
	first, _ := b.Get(ctx, "s", "p")
	f.Set(func(f *ststest.Server) { f.Mode = ststest.Down })
	clock.add(58 * time.Minute) // in the refresh window, still valid
	for i := 0; i < 3; i++ {
		c, err := b.Get(ctx, "s", "p")
		if err != nil || !sameCreds(c, first) {
			t.Fatalf("get %d: %v %v", i, c, err)
		}
		ststest.WaitFor(t, b.Idle)
	}
	if f.Calls.Load() < 2 {
		t.Errorf("no refresh was attempted")
	}
}

func TestSTSDownWithoutCacheFails(t *testing.T) {
	for _, mode := range []string{ststest.Down, ststest.Throttled} {
		t.Run(mode, func(t *testing.T) {
			f := ststest.NewServer(t)
			b, clock := newTestBroker(t, f, 16)
			f.Set(func(f *ststest.Server) { f.Mode = mode })
			_, err := b.Get(context.Background(), "s", "p")
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v", err)
			}
			// A credential past its safety margin is not served either.
			f.Set(func(f *ststest.Server) { f.Mode = ""; f.Expiration = clock.now().Add(time.Hour) })
			if _, err := b.Get(context.Background(), "s2", "p"); err != nil {
				t.Fatal(err)
			}
			f.Set(func(f *ststest.Server) { f.Mode = mode })
			clock.add(time.Hour - 10*time.Second)
			if _, err := b.Get(context.Background(), "s2", "p"); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("nearly expired credential served: %v", err)
			}
		})
	}
}

func TestSTSCacheIsBounded(t *testing.T) {
	f := ststest.NewServer(t)
	b, _ := newTestBroker(t, f, 2)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c"} {
		if _, err := b.Get(ctx, s, "p"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Get(ctx, "c", "p"); err != nil || f.Calls.Load() != 3 {
		t.Fatalf("c should be cached: calls %d", f.Calls.Load())
	}
	if _, err := b.Get(ctx, "a", "p"); err != nil || f.Calls.Load() != 4 {
		t.Fatalf("a should have been evicted: calls %d", f.Calls.Load())
	}
	if len(b.entries) != 2 || b.lru.Len() != 2 {
		t.Errorf("cache holds %d entries", len(b.entries))
	}
}

func TestSTSWaiterCancellation(t *testing.T) {
	f := ststest.NewServer(t)
	hold := make(chan struct{})
	f.Set(func(f *ststest.Server) { f.Hold = hold })
	b, _ := newTestBroker(t, f, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Get(ctx, "s", "p"); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	close(hold)
	// The shared call still completes for later callers.
	if c, err := b.Get(context.Background(), "s", "p"); err != nil || c.ID == "" {
		t.Fatalf("%v %v", c, err)
	}
}

func BenchmarkSTSCacheHit(b *testing.B) {
	br, _ := newTestBroker(b, ststest.NewServer(b), 16)
	if _, err := br.Get(context.Background(), "s", "p"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Get(context.Background(), "s", "p"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
