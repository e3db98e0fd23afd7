package main

// The printed line, and what goes into it: the app's delivery counts once
// they settle, and the latency percentiles.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// result is the printed line, in this order.
type result struct {
	uploads    int
	seconds    float64
	ok200      int
	cb203      int
	other      int
	p50ms      float64
	p99ms      float64
	cpuUS      float64 // Caddy's CPU µs per upload
	del0       int     // stored objects (200 or 203) never delivered
	del1       int
	delMore    int
	stray      int     // deliveries of objects this run did not store
	verified   int     // deliveries marked verified by the handler
	caddyCore0 float64 // during the uploads, as are the busy shares
	core0Busy  float64
	core1Busy  float64
	ossemuUS   float64 // the emulator's CPU µs per upload, when its pid is known
}

const header = "uploads seconds ok200 cb203 other p50_ms p99_ms caddy_cpu_us_per_upload " +
	"delivered0 delivered1 delivered_more stray verified_deliveries caddy_pct_of_cpu0 cpu0_busy_pct cpu1_busy_pct ossemu_cpu_us_per_upload"

func (r result) line() string {
	return fmt.Sprintf("%d %.3f %d %d %d %.2f %.2f %.1f %d %d %d %d %d %.1f %.1f %.1f %.1f",
		r.uploads, r.seconds, r.ok200, r.cb203, r.other, r.p50ms, r.p99ms, r.cpuUS,
		r.del0, r.del1, r.delMore, r.stray, r.verified, r.caddyCore0, r.core0Busy, r.core1Busy, r.ossemuUS)
}

// settle waits until every stored object was delivered, or the app's
// counts stopped changing for cfg.settle, or cfg.maxSettle passed, and
// returns the counts under prefix.
func settle(ctx context.Context, cfg loadConfig, client *http.Client, prefix string, want int) (map[string]int, int, error) {
	deadline := time.Now().Add(cfg.maxSettle)
	var last countsAnswer
	lastTotal, stableSince := -1, time.Now()
	for {
		got, err := fetchCounts(ctx, cfg, client, prefix)
		if err != nil {
			return nil, 0, err
		}
		total := 0
		for _, n := range got.Counts {
			total += n
		}
		now := time.Now()
		if total != lastTotal {
			lastTotal, stableSince = total, now
		}
		last = got
		if len(got.Counts) >= want && now.Sub(stableSince) >= 200*time.Millisecond ||
			now.Sub(stableSince) >= cfg.settle || now.After(deadline) {
			return last.Counts, last.Verified, nil
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func fetchCounts(ctx context.Context, cfg loadConfig, client *http.Client, prefix string) (countsAnswer, error) {
	u := *cfg.appURL
	u.Path = "/__bench/counts"
	u.RawQuery = url.Values{"prefix": {prefix}}.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	resp, err := client.Do(req)
	if err != nil {
		return countsAnswer{}, fmt.Errorf("app counts: %v", err)
	}
	defer resp.Body.Close()
	var out countsAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return countsAnswer{}, fmt.Errorf("app counts: %d %v", resp.StatusCode, err)
	}
	return out, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
