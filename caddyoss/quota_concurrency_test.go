package caddyoss

// Many signing requests for one user at once, inside one Caddy: the
// grants never exceed the limit, each grant saw the ones before it, and
// what the ledger holds is what was granted.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// burst sends n signing requests at once, spread over targets, as user,
// and returns the answers (status, headers, body); a failed request is
// reported and left out.
func (e *quotaEnv) burst(t *testing.T, user string, n int, targets ...string) []signAnswer {
	t.Helper()
	out := make([]signAnswer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := targets[i%len(targets)]
			method, body := "GET", []byte(nil)
			if target == qCreate {
				method, body = "POST", []byte(`{"filename":"m.png","type":"image/png"}`)
			}
			req, _ := http.NewRequest(method, "http://localhost:9080"+target, bytes.NewReader(body))
			req.Header.Set("X-User", user)
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := e.tester.Client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", target, err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out[i] = signAnswer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
			_ = json.Unmarshal(b, &out[i].body)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// grants counts the 200s of answers, and fails the test on any answer
// but a 200 or a 429.
func grants(t *testing.T, answers []signAnswer) []signAnswer {
	t.Helper()
	var ok []signAnswer
	for _, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok = append(ok, a)
		case http.StatusTooManyRequests:
		case 0: // reported by burst
		default:
			t.Errorf("an answer other than 200 or 429: %d %s", a.status, a.raw)
		}
	}
	return ok
}

// checkNoOverstatement asserts that no grant's header (the rest of
// limit, each grant using each) overstates what remains: grants share a
// round's usage, but the i-th grant decided counts at least i grants, so
// the i-th highest value is at most limit - i*each. The last grant saw
// them all.
func checkNoOverstatement(t *testing.T, user string, ok []signAnswer, header string, limit, each int64) {
	t.Helper()
	var left []int64
	for _, a := range ok {
		n, err := strconv.ParseInt(a.header.Get(header), 10, 64)
		if err != nil {
			t.Fatalf("%s: %s %q", user, header, a.header.Get(header))
		}
		left = append(left, n)
	}
	slices.Sort(left)
	slices.Reverse(left)
	for i, n := range left {
		if n > limit-int64(i+1)*each {
			t.Errorf("%s: %s %v: the grant that left %d overstates what remains", user, header, left, n)
		}
	}
	if len(left) > 0 && left[len(left)-1] != limit-int64(len(left))*each {
		t.Errorf("%s: %s %v: the last grant did not see them all", user, header, left)
	}
}

// Concurrent requests of every mode for two users: each user gets exactly
// the limit's grants, one reservation each, and no grant's
// remaining count overstates the rest; a second burst gets none.
func TestQuotaConcurrentUploads(t *testing.T) {
	const limit = 6
	e := newQuotaEnv(t, "", fmt.Sprintf("uploads %d per 1h", limit), confirmOpts{})
	modes := []string{qPolicy, qPresign, qSTS, qParams, qCreate}
	var wg sync.WaitGroup
	got := map[string][]signAnswer{}
	var mu sync.Mutex
	for _, user := range []string{"alice", "bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers := e.burst(t, user, 40, modes...)
			mu.Lock()
			got[user] = answers
			mu.Unlock()
		}()
	}
	wg.Wait()
	for user, answers := range got {
		ok := grants(t, answers)
		if len(ok) != limit {
			t.Errorf("%s: %d grants of %d requests, want the limit %d", user, len(ok), len(answers), limit)
		}
		checkNoOverstatement(t, user, ok, "X-Quota-Remaining-Uploads", limit, 1)
		if u := e.usage(t, user); u.Uploads != int64(len(ok)) || u.Pending != int64(len(ok)) {
			t.Errorf("%s: the ledger holds %d uploads, %d pending, for %d grants", user, u.Uploads, u.Pending, len(ok))
		}
	}
	if ok := grants(t, e.burst(t, "alice", 20, modes...)); len(ok) != 0 {
		t.Errorf("a full quota granted %d more", len(ok))
	}
}

// Declared sizes against a bytes limit: as many grants as fit, no more.
func TestQuotaConcurrentBytes(t *testing.T) {
	e := newQuotaEnv(t, "", "bytes 5000 per 1h", confirmOpts{})
	ok := grants(t, e.burst(t, "alice", 40, qPolicy+"&size=300", qParams+"&size=300"))
	if len(ok) != 5000/300 {
		t.Errorf("%d grants of 300 bytes, want %d", len(ok), 5000/300)
	}
	checkNoOverstatement(t, "alice", ok, "X-Quota-Remaining-Bytes", 5000, 300)
	if u := e.usage(t, "alice"); u.Bytes != int64(300*len(ok)) || u.Pending != int64(len(ok)) {
		t.Errorf("the ledger holds %d bytes, %d pending, for %d grants", u.Bytes, u.Pending, len(ok))
	}
}
