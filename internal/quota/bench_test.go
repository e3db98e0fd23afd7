package quota

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// The Reserve of a signing route, on memory (the ledger's own CPU), the
// file system and a real redis-server, with limits that never refuse:
//
//	serial       one caller after another, one key
//	64/1key      64 callers at once, one key (a load test with one user)
//	64/64keys    64 callers at once, each its own key
//	64/1key/900s 64 callers, one key whose record holds 900 live expiry
//	             seconds (a signing route's steady state: 15 min
//	             reservations, signed every second)
//
// ns/op is wall time per Reserve across all callers; writes/op the
// storage writes per Reserve (batching makes it < 1); cpu-ns/op the CPU
// time of this process per Reserve, server-cpu-ns/op redis-server's.
func BenchmarkReserve(b *testing.B) {
	for _, s := range benchStorages(b) {
		b.Run(s.name+"/serial", func(b *testing.B) { benchReserve(b, s, 1, false, 0) })
		b.Run(s.name+"/64/1key", func(b *testing.B) { benchReserve(b, s, 64, false, 0) })
		b.Run(s.name+"/64/64keys", func(b *testing.B) { benchReserve(b, s, 64, true, 0) })
		b.Run(s.name+"/64/1key/900s", func(b *testing.B) { benchReserve(b, s, 64, false, 900) })
	}
}

// The Settle of a callback route: 64 callers at once settle n uploads of
// one key, signed (on two instances, in turn) before the timer starts;
// the callbacks reach the two instances in turn, so each settles
// reservations of both. Each settled reservation is kept until its
// reservation would have expired (15 min here), so a round's work grows
// with n: n is the key's uploads within a reservation lifetime, which
// Config.Uploads bounds. ns/settle is wall time per Settle.
func BenchmarkSettle(b *testing.B) {
	for _, s := range benchStorages(b) {
		for _, n := range []int{100, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/64/1key/2instances/%d", s.name, n), func(b *testing.B) {
				st := &countingStorage{Storage: s.open()}
				for i := range b.N {
					b.StopTimer()
					cfg := Config{Prefix: fmt.Sprintf("bench/settle/%d/%d", n, i), Bytes: 1 << 60}
					ledgers := []*Ledger{benchLedger(b, s, st, cfg), benchLedger(b, s, st, cfg)}
					ids := make([]string, n)
					var next atomic.Int64
					parallel(64, func() {
						for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
							res, err := ledgers[i%2].Reserve(bg, "k", 1000, time.Now().Add(15*time.Minute))
							if err != nil {
								b.Error(err)
							}
							ids[i] = res.ID
						}
					})
					next.Store(0)
					b.StartTimer()
					parallel(64, func() {
						for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
							if s, err := ledgers[i/7%2].Settle(bg, "k", ids[i], 900); err != nil || !s.Reserved {
								b.Error(s, err)
							}
						}
					})
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/settle")
			})
		}
	}
}

// Requests of one user through an HTTP server on loopback, as a signing
// route takes them: 64 clients, each with its connection, send a request
// after the last answer; the handler signs (about 40 µs of HMACs) and then
// reserves. writes/op is the storage writes per request: the reservations
// that arrive while a round writes share the next round. Run it at -cpu 1
// and 2.
func BenchmarkSigningOneUser(b *testing.B) {
	for _, s := range benchStorages(b) {
		b.Run(s.name, func(b *testing.B) {
			cst := &countingStorage{Storage: s.open()}
			l := benchLedger(b, s, cst, Config{Prefix: fmt.Sprintf("bench/signing/%d", b.N), Bytes: 1 << 60})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sig := sign()
				if _, err := l.Reserve(r.Context(), "k", 1000, time.Now().Add(15*time.Minute)); err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
				fmt.Fprintf(w, "%x", sig)
			}))
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var n atomic.Int64
			b.SetParallelism(parallelism(64))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n.Add(1)
					resp, err := client.Get(srv.URL)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Error(resp.Status)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cst.writes.Load())/float64(n.Load()), "writes/op")
		})
	}
}

// sign is about a signing request's CPU work.
func sign() byte {
	key := []byte("secret")
	msg := make([]byte, 512)
	for range 40 {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		key = h.Sum(nil)
	}
	return key[0]
}

// parallel runs f in n goroutines and waits for them.
func parallel(n int, f func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(f)
	}
	wg.Wait()
}

func benchReserve(b *testing.B, s sharedStorage, callers int, ownKeys bool, spread int64) {
	cst := &countingStorage{Storage: s.open()}
	l := benchLedger(b, s, cst, Config{Prefix: fmt.Sprintf("bench/reserve/%d/%d", callers, b.N), Bytes: 1 << 60, Uploads: 1 << 60})
	var n, key atomic.Int64
	reserve := func(k string) {
		i := n.Add(1)
		expires := time.Now().Add(15 * time.Minute)
		if spread > 0 {
			expires = expires.Add(time.Duration(i%spread) * time.Second)
		}
		if _, err := l.Reserve(bg, k, 1<<20, expires); err != nil {
			b.Error(err)
		}
	}
	if spread > 0 { // the steady state's record, before timing
		for range spread {
			reserve("k")
		}
	}
	cst.writes.Store(0)
	cpu0, server0 := cpuTime(), s.serverCPU()
	b.ResetTimer()
	if callers == 1 {
		for range b.N {
			reserve("k")
		}
	} else {
		b.SetParallelism(parallelism(callers))
		b.RunParallel(func(pb *testing.PB) {
			k := "k"
			if ownKeys {
				k = fmt.Sprintf("k%d", key.Add(1))
			}
			for pb.Next() {
				reserve(k)
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(cst.writes.Load())/float64(b.N), "writes/op")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	if server := s.serverCPU() - server0; server > 0 {
		b.ReportMetric(float64(server.Nanoseconds())/float64(b.N), "server-cpu-ns/op")
	}
}

// parallelism is the RunParallel factor giving n goroutines.
func parallelism(n int) int { return max(1, n/runtime.GOMAXPROCS(0)) }

// countingStorage counts Stores and Deletes.
type countingStorage struct {
	certmagic.Storage
	writes atomic.Int64
}

func (c *countingStorage) Store(ctx context.Context, key string, value []byte) error {
	c.writes.Add(1)
	return c.Storage.Store(ctx, key, value)
}

func (c *countingStorage) Delete(ctx context.Context, key string) error {
	c.writes.Add(1)
	return c.Storage.Delete(ctx, key)
}

// benchStorages are memory (a new one for each run), the file system,
// the file system with every record synced (file_system_synced: the
// reservations written with Store, as on storages without a quick write)
// and redis for benchmarks.
func benchStorages(b *testing.B) []sharedStorage {
	none := func() time.Duration { return 0 }
	mem := sharedStorage{"mem", func() certmagic.Storage { return newMem() }, none}
	shared := storages(b)
	synced := sharedStorage{"file_system_synced", shared[0].open, none}
	return append([]sharedStorage{mem, shared[0], synced}, shared[1:]...)
}

// benchLedger builds a Ledger on cst, which counts the writes of s's
// storage: on the file system, its quick writes too (unless s is
// file_system_synced, whose Ledger writes every record with Store).
func benchLedger(b *testing.B, s sharedStorage, cst *countingStorage, cfg Config) *Ledger {
	l := newLedger(b, cst, nil, cfg)
	if fs, ok := cst.Storage.(*certmagic.FileStorage); ok && s.name != "file_system_synced" {
		quick := quickFileWriter(fs)
		l.quick = func(ctx context.Context, key string, value []byte) error {
			cst.writes.Add(1)
			return quick(ctx, key, value)
		}
	}
	return l
}

// cpuTime is the CPU time this process used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
