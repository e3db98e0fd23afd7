package osssign

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestTimeAppendersMatchFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{
		time.Unix(0, 0), time.Date(2026, 11, 24, 23, 59, 59, 999999999, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", -5*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 1e6, time.UTC),
		time.Now(), time.Now().Add(15 * time.Minute).In(time.FixedZone("cst", 8*3600)),
	}
	for range 20000 {
		times = append(times, time.Unix(rng.Int64N(253402300799), rng.Int64N(1e9)).In(time.FixedZone("z", (rng.IntN(48)-24)*1800)))
	}
	for _, tc := range []struct {
		layout string
		fn     func([]byte, time.Time) []byte
	}{
		{"20060102T150405Z", AppendUTCBasic},
		{time.RFC3339, AppendUTCRFC3339},
		{"2006-01-02T15:04:05.000Z", AppendUTCMillis},
	} {
		for _, tm := range times {
			want := tm.UTC().Format(tc.layout)
			if got := string(tc.fn([]byte("prefix:"), tm)); got != "prefix:"+want {
				t.Fatalf("%s of %v: %q, time.Format %q", tc.layout, tm, got, want)
			}
		}
	}
}
