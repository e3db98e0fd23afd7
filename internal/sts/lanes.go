package sts

import (
	"sync"
	"sync/atomic"
)

// The STS SDK is not safe for concurrent calls: its client keeps per-call
// headers in itself, and alibabacloud-go/tea keeps one HTTP client per
// endpoint and timeout settings for the whole process, whose Timeout it
// writes on every call while other calls read it. Calls therefore go
// through lanes: each lane has a read timeout of its own, one millisecond
// apart, so that it has a tea HTTP client of its own, each broker has an
// SDK client per lane, and a lane runs one call at a time. Up to
// len(lanes) calls run at once in the process.
var (
	lanes    [8]sync.Mutex
	nextLane atomic.Uint32
)

// withLane runs call in a free lane (waiting for one when all are busy)
// and passes it the lane's number, which the call adds to its read timeout
// in milliseconds.
func withLane(call func(lane int)) {
	start := int(nextLane.Add(1))
	for i := range lanes {
		lane := (start + i) % len(lanes)
		if lanes[lane].TryLock() {
			defer lanes[lane].Unlock()
			call(lane)
			return
		}
	}
	lane := start % len(lanes)
	lanes[lane].Lock()
	defer lanes[lane].Unlock()
	call(lane)
}
