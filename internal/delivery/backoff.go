package delivery

import "time"

// Backoff bounds.
const (
	backoffBase = time.Second
	backoffMax  = 10 * time.Minute
)

// backoff is the wait after the n-th failed try (n ≥ 1): 1 s doubled at
// each try, capped at 10 minutes, then spread by ±20 % with r in [0, 1) so
// that events that failed together do not come back together.
func backoff(n int, r float64) time.Duration {
	d := backoffMax
	if n < 1 {
		n = 1
	}
	if n <= 20 {
		d = min(backoffBase<<(n-1), backoffMax)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*r))
}
