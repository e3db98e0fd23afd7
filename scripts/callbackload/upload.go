package main

// The measured phase: c workers post the forms to the emulator; then the
// deliveries settle and the run counts them into its result.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// clients: keep-alive pools sized for the concurrency. Everything the
// uploads address (<bucket>.localhost:<port> and the like) is dialled on
// the emulator's address, as a browser resolving *.localhost would.
func newClients(cfg loadConfig) (toCaddy, toOSS *http.Client) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	toCaddy = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: cfg.signConc + 4,
	}}
	toOSS = &http.Client{
		// OSS waits 5 s for a callback; the rest is the upload itself.
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, cfg.ossAddr)
			},
			MaxIdleConns:        cfg.c + 16,
			MaxIdleConnsPerHost: cfg.c + 16,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return toCaddy, toOSS
}

func load(ctx context.Context, cfg loadConfig) (result, error) {
	toCaddy, toOSS := newClients(cfg)
	defer toCaddy.CloseIdleConnections()
	defer toOSS.CloseIdleConnections()

	policies, err := signAll(ctx, cfg, toCaddy)
	if err != nil {
		return result{}, err
	}
	prefix := ""
	for i, p := range policies {
		u, err := url.Parse(p.URL)
		if err != nil || u.Scheme != "http" || !loopbackHost(u.Hostname()) {
			return result{}, fmt.Errorf("policy %d: upload URL %q is not http on loopback", i, p.URL)
		}
		if i == 0 {
			if j := strings.Index(p.Key, cfg.run+"/"); j >= 0 {
				prefix = p.Key[:j+len(cfg.run)+1]
			}
		}
	}
	if prefix == "" {
		return result{}, fmt.Errorf("the key %q does not hold the run id %q: set key_prefix to include {http.request.header.X-User}/", policies[0].Key, cfg.run)
	}
	for i, p := range policies {
		if !strings.HasPrefix(p.Key, prefix) {
			return result{}, fmt.Errorf("policy %d: key %q is not under %q", i, p.Key, prefix)
		}
	}

	// Bodies are built before measuring, so the measured phase is the
	// uploads and nothing else.
	type upload struct {
		body        []byte
		contentType string
		url         string
	}
	uploads := make([]upload, len(policies))
	for i, p := range policies {
		b, ct, err := formBody(p, cfg, i)
		if err != nil {
			return result{}, err
		}
		uploads[i] = upload{b, ct, p.URL}
	}

	latencies := make([]time.Duration, len(uploads))
	statuses := make([]int, len(uploads)) // 0: no answer
	var next atomic.Int64
	var shown atomic.Int64
	before, err := procTicks(cfg.caddyPID)
	if err != nil {
		return result{}, err
	}
	emuBefore := emuTicks(cfg)
	coresBefore, _ := coreTicks()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < min(cfg.c, len(uploads)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(uploads) || ctx.Err() != nil {
					return
				}
				u := uploads[i]
				t0 := time.Now()
				status, answer, err := post(ctx, toOSS, u.url, u.contentType, u.body)
				latencies[i] = time.Since(t0)
				statuses[i] = status
				if status != http.StatusOK && shown.Add(1) <= int64(cfg.showErrors) {
					if err != nil {
						log.Printf("upload %d: %v", i, err)
					} else {
						log.Printf("upload %d: %d %s", i, status, truncate(answer, 300))
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The cores' shares are of the uploads' time; CPU per upload also
	// counts what Caddy does until the deliveries settle.
	mid, err := procTicks(cfg.caddyPID)
	if err != nil {
		return result{}, err
	}
	coresMid, _ := coreTicks()
	if ctx.Err() != nil {
		return result{}, fmt.Errorf("the run timed out after %d of %d uploads", min(int(next.Load()), len(uploads)), len(uploads))
	}

	counts, verified, err := settle(ctx, cfg, toCaddy, prefix, len(uploads))
	if err != nil {
		return result{}, err
	}
	after, err := procTicks(cfg.caddyPID)
	if err != nil {
		return result{}, err
	}
	emuAfter := emuTicks(cfg)

	res := result{uploads: len(uploads), seconds: elapsed.Seconds(), verified: verified}
	stored := map[string]bool{}
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			res.ok200++
		case http.StatusNonAuthoritativeInfo:
			res.cb203++
		default:
			res.other++
		}
		// 200 and 203 both mean OSS stored the object.
		if s == http.StatusOK || s == http.StatusNonAuthoritativeInfo {
			stored[policies[i].Key] = true
		}
	}
	for k := range stored {
		switch n := counts[k]; {
		case n == 0:
			res.del0++
		case n == 1:
			res.del1++
		default:
			res.delMore++
		}
	}
	for k, n := range counts {
		if !stored[k] {
			res.stray += n
		}
	}
	sorted := append([]time.Duration(nil), latencies...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	res.p50ms = ms(percentile(sorted, 0.50))
	res.p99ms = ms(percentile(sorted, 0.99))
	perUpload := func(ticks int64) float64 {
		return float64(ticks) * 1e6 / float64(cfg.clkTck) / float64(len(uploads))
	}
	res.cpuUS = perUpload(after - before)
	if emuBefore >= 0 && emuAfter >= 0 {
		res.ossemuUS = perUpload(emuAfter - emuBefore)
	}
	if len(coresBefore) >= 2 && len(coresMid) >= 2 {
		t0 := coresMid[0].total - coresBefore[0].total
		t1 := coresMid[1].total - coresBefore[1].total
		if t0 > 0 {
			res.caddyCore0 = 100 * float64(mid-before) / float64(t0)
			res.core0Busy = 100 * float64(t0-(coresMid[0].idle-coresBefore[0].idle)) / float64(t0)
		}
		if t1 > 0 {
			res.core1Busy = 100 * float64(t1-(coresMid[1].idle-coresBefore[1].idle)) / float64(t1)
		}
	}
	return res, nil
}

func post(ctx context.Context, client *http.Client, target, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	if err != nil {
		return 0, answer, err
	}
	return resp.StatusCode, answer, nil
}

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
