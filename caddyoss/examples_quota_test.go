package caddyoss

// What an example with a quota block must show its signed-in user
// (docs/quotas.md): every granted signing answer carries the
// X-Quota-Remaining-* header of each limit set, and of no other; asked
// again and again, the quota ends in a 429 with Retry-After and the JSON
// refusal; and when the example sets Access-Control-Expose-Headers, both
// answers expose Retry-After and the remaining headers.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxQuotaAsks bounds the requests that exhaust an example's quota; an
// example whose smallest limit needs more is not exhausted (the test logs
// it).
const maxQuotaAsks = 60

// quotaHeaders are the remaining headers, by the limit they report.
var quotaHeaders = [...]struct {
	name  string
	limit func(*QuotaConfig) int64
}{
	{"X-Quota-Remaining-Bytes", func(q *QuotaConfig) int64 { return q.Bytes }},
	{"X-Quota-Remaining-Uploads", func(q *QuotaConfig) int64 { return q.Uploads }},
	{"X-Quota-Remaining-Pending", func(q *QuotaConfig) int64 { return q.Pending }},
}

func checkExampleQuota(t *testing.T, b docBlock, handlers []Handler, ask func(signingRequest) (*http.Response, string)) {
	t.Helper()
	exposes := strings.Contains(b.text, "Access-Control-Expose-Headers")
	for _, h := range handlers {
		q := h.Quota
		routes := signingRequests(h)
		if q == nil || len(routes) == 0 {
			continue
		}
		var refused *http.Response
		var body string
		asks := 0
		for _, r := range routes {
			resp, out := ask(r)
			asks++
			if resp.StatusCode == http.StatusTooManyRequests {
				refused, body = resp, out
				break
			}
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s %s: %d %.300s", b.name(), r.method, r.path, resp.StatusCode, out)
			}
			checkExampleRemaining(t, b, r, resp, q, exposes)
		}
		smallest := int64(maxQuotaAsks + 1)
		for _, n := range []int64{q.Pending, q.Uploads} {
			if n > 0 {
				smallest = min(smallest, n)
			}
		}
		if refused == nil && smallest > maxQuotaAsks {
			t.Logf("%s: pending and uploads allow more than %d signings: the quota is not exhausted here", b.name(), maxQuotaAsks)
			continue
		}
		for ; refused == nil && asks < maxQuotaAsks+len(routes); asks++ {
			resp, out := ask(routes[0])
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				refused, body = resp, out
			case 200:
				checkExampleRemaining(t, b, routes[0], resp, q, exposes)
			default:
				t.Fatalf("%s: %s %s: %d %.300s", b.name(), routes[0].method, routes[0].path, resp.StatusCode, out)
			}
		}
		if refused == nil {
			t.Fatalf("%s: %d signings and no 429, with a quota of %d", b.name(), asks, smallest)
		}
		checkRefusal(t, b, refused, body, q, exposes)
		t.Logf("%s: the quota answered 429 after %d signings: %s", b.name(), asks, body)
	}
}

// checkRemaining checks the remaining headers of a granted answer.
func checkExampleRemaining(t *testing.T, b docBlock, r signingRequest, resp *http.Response, q *QuotaConfig, exposes bool) {
	t.Helper()
	for _, qh := range quotaHeaders {
		v, limit := resp.Header.Get(qh.name), qh.limit(q)
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case limit == 0 && v != "":
			t.Errorf("%s: %s %s: %s: %q for a limit the example does not set", b.name(), r.method, r.path, qh.name, v)
		case limit > 0 && (err != nil || n < 0 || n >= limit):
			t.Errorf("%s: %s %s: %s: %q, want what is left of %d after this signing", b.name(), r.method, r.path, qh.name, v, limit)
		}
	}
	if exposes {
		checkExposed(t, b, resp)
	}
}

// checkRefusal checks a 429: Retry-After, and the JSON refusal that
// agrees with it and with the limits.
func checkRefusal(t *testing.T, b docBlock, resp *http.Response, body string, q *QuotaConfig, exposes bool) {
	t.Helper()
	var got struct {
		Error string      `json:"error"`
		Quota quotaMember `json:"quota"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Error == "" {
		t.Fatalf("%s: the 429's body is not {\"error\", \"quota\"}: %.300s", b.name(), body)
	}
	limits := map[string]int64{"bytes": q.Bytes, "uploads": q.Uploads, "pending": q.Pending}
	g := got.Quota
	if limit, ok := limits[g.Reason]; !ok || limit == 0 || g.Limit != limit || g.Used+g.Asked <= g.Limit {
		t.Errorf("%s: the refusal %+v does not agree with the limits %+v", b.name(), g, *q)
	}
	after, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64)
	if err != nil || after < 1 || g.RetryAfter == nil || after != *g.RetryAfter {
		t.Errorf("%s: Retry-After %q, retry_after %v: want the same whole seconds", b.name(), resp.Header.Get("Retry-After"), g.RetryAfter)
	}
	if _, err := time.Parse(time.RFC3339, g.RetryAt); err != nil {
		t.Errorf("%s: retry_at %q is not RFC 3339", b.name(), g.RetryAt)
	}
	for _, qh := range quotaHeaders {
		if v := resp.Header.Get(qh.name); v != "" {
			t.Errorf("%s: the 429 carries %s: %s", b.name(), qh.name, v)
		}
	}
	if exposes {
		checkExposed(t, b, resp)
	}
}

// checkExposed checks that an answer lets a page on another origin read
// Retry-After and the remaining headers.
func checkExposed(t *testing.T, b docBlock, resp *http.Response) {
	t.Helper()
	var exposed []string
	for _, v := range resp.Header.Values("Access-Control-Expose-Headers") {
		for _, name := range strings.Split(v, ",") {
			exposed = append(exposed, strings.ToLower(strings.TrimSpace(name)))
		}
	}
	want := []string{"Retry-After"}
	for _, qh := range quotaHeaders {
		want = append(want, qh.name)
	}
	for _, name := range want {
		found := false
		for _, e := range exposed {
			found = found || e == strings.ToLower(name)
		}
		if !found {
			t.Errorf("%s: a %d answer's Access-Control-Expose-Headers %q leaves out %s", b.name(), resp.StatusCode, exposed, name)
		}
	}
}
