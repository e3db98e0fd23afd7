package caddyoss

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// The admin quota routes' tests run a Caddy with sites sharing its storage
// (see newQuotaAdminEnv); uploads go through ossemu, whose callbacks settle
// them in the ledgers.

// quotaBlock is the quota of the tests' first site; the second has 3
// uploads per hour, the third none.
const quotaBlock = `
		quota {
			key {http.request.header.X-User}
			bytes 10KB per 1h
			uploads 2 per 1h
			pending 3
		}`

// quotaAdminEnv is a Caddy with three oss_upload handlers, one per site:
// localhost:9080 (quotaBlock), localhost:9081 (its own quota, 3 uploads)
// and localhost:9082 (no quota).
type quotaAdminEnv struct {
	*confirmEnv
	a, b, c string // the handlers' ids
}

func newQuotaAdminEnv(t *testing.T) *quotaAdminEnv {
	t.Helper()
	e := newConfirmEnv(t, confirmOpts{extra: quotaBlock})
	site := func(port, prefix string, quota string) string {
		s := strings.Replace(e.config, "http://localhost:9080 {", "http://localhost:"+port+" {", 1)
		s = strings.Replace(s, "key_prefix "+cfPrefix, "key_prefix "+prefix, 1)
		s = strings.Replace(s, "url http://localhost:9080"+cfCbPath, "url http://localhost:"+port+cfCbPath, 1)
		s = strings.Replace(s, quotaBlock, quota, 1)
		return s[strings.Index(s, "http://localhost:"+port+" {"):]
	}
	const bPrefix, cPrefix = "staff/{http.request.header.X-User}/", "other/{http.request.header.X-User}/"
	e.tester.InitServer(e.config+"\n"+site("9081", bPrefix, strings.Replace(quotaBlock, "uploads 2", "uploads 3", 1))+
		"\n"+site("9082", cPrefix, ""), "caddyfile")
	return &quotaAdminEnv{confirmEnv: e, a: e.handlerID,
		b: callback.HandlerID(secBucket, bPrefix, cfCbPath, "http://localhost:9081"+cfCbPath),
		c: callback.HandlerID(secBucket, cPrefix, cfCbPath, "http://localhost:9082"+cfCbPath)}
}

// sign asks the post-policy route of the site at host for a 100-byte PNG
// as user, and returns the status and the answer.
func (e *confirmEnv) signAt(t *testing.T, host, user string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+host+"/oss/post-policy?filename=a.png&type=image/png&size=100", nil)
	status, b := e.ask(t, req, user)
	var p map[string]any
	_ = json.Unmarshal(b, &p)
	return status, p
}

// uploadAt uploads 100 bytes as user through the site at host; OSS's
// callback reaches the site, which settles the upload.
func (e *confirmEnv) uploadAt(t *testing.T, host, user string) {
	t.Helper()
	status, p := e.signAt(t, host, user)
	if status != 200 {
		t.Fatalf("signing at %s for %s: %d %v", host, user, status, p)
	}
	var fields [][2]string
	for k, v := range p["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	if status, answer := e.postForm(t, p["url"].(string), fields, "image/png", []byte(strings.Repeat("q", 100))); status != 200 {
		t.Fatalf("upload at %s for %s: OSS answered %d %s", host, user, status, answer)
	}
}

// adminAsk asks the test's admin endpoint and decodes its JSON answer.
func adminAsk(t *testing.T, method, path string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://localhost:2999"+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, resp.Header, body
}

// usagePath is the usage route of a handler for key.
func usagePath(handler, key string) string {
	return "/oss_upload/quota/" + handler + "?key=" + url.QueryEscape(key)
}

// wantUsage checks members of an answer, "uploads=2 limits.uploads=2
// reset=true …", nested ones by their dotted path.
func wantUsage(want string) func(*testing.T, map[string]any, http.Header) {
	return func(t *testing.T, b map[string]any, _ http.Header) {
		t.Helper()
		for _, kv := range strings.Fields(want) {
			k, v, _ := strings.Cut(kv, "=")
			var got any = b
			for _, part := range strings.Split(k, ".") {
				m, _ := got.(map[string]any)
				got = m[part]
			}
			if n, ok := got.(float64); ok {
				got = strconv.FormatFloat(n, 'f', -1, 64)
			}
			if got == nil || fmt.Sprint(got) != v {
				t.Errorf("%s = %v, want %s in %v", k, got, v, b)
			}
		}
	}
}

// Operators read a key's usage after signings and uploads through the
// real routes, reset it, and the key's 429 turns into a 200; the reset
// touches neither another key nor another handler's ledger, the handler
// listing shows each handler's quota, and the routes' errors answer as
// the dead-letter routes' do.
func TestAdminQuotaRoutes(t *testing.T) {
	e := newQuotaAdminEnv(t)
	const b = "localhost:9081"
	e.uploadAt(t, "localhost:9080", "alice")
	e.uploadAt(t, "localhost:9080", "alice")
	e.uploadAt(t, "localhost:9080", "bob")
	e.uploadAt(t, b, "alice")
	if status, p := e.signAt(t, b, "alice"); status != 200 { // pending: signed, never uploaded
		t.Fatalf("signing at %s: %d %v", b, status, p)
	}
	if status, _ := e.signAt(t, "localhost:9080", "alice"); status != 429 {
		t.Fatalf("alice's third signing: %d, want 429", status)
	}

	type step struct {
		method, path string
		status       int
		check        func(*testing.T, map[string]any, http.Header)
	}
	run := func(t *testing.T, steps []step) {
		t.Helper()
		for _, s := range steps {
			status, header, body := adminAsk(t, s.method, s.path)
			if status != s.status {
				t.Errorf("%s %s: %d, want %d: %v", s.method, s.path, status, s.status, body)
				continue
			}
			if s.check != nil {
				s.check(t, body, header)
			}
		}
	}
	aliceA, aliceB, bobA := usagePath(e.a, "alice"), usagePath(e.b, "alice"), usagePath(e.a, "bob")
	bAlice := "handler=" + e.b + " key=alice uploads=2 pending=1 bytes=200 pending_bytes=100 limits.uploads=3 remaining.uploads=1"
	t.Run("usage", func(t *testing.T) {
		run(t, []step{
			{"GET", aliceA, 200, wantUsage("handler=" + e.a + " key=alice uploads=2 pending=0 bytes=200 pending_bytes=0 " +
				"limits.bytes=10000 limits.uploads=2 limits.pending=3 remaining.bytes=9800 remaining.uploads=0 remaining.pending=3 window=1h0m0s")},
			{"GET", aliceB, 200, wantUsage(bAlice)},
			{"GET", bobA, 200, wantUsage("key=bob uploads=1 bytes=100 remaining.uploads=1")},
			{"GET", usagePath(e.a, "carol"), 200, wantUsage("key=carol uploads=0 bytes=0 pending=0 remaining.uploads=2")},
		})
	})

	t.Run("reset", func(t *testing.T) {
		run(t, []step{{"POST", "/oss_upload/quota/" + e.a + "/reset?key=alice", 200,
			wantUsage("handler=" + e.a + " key=alice reset=true uploads=0 bytes=0 pending=0 remaining.uploads=2")}})
		if status, p := e.signAt(t, "localhost:9080", "alice"); status != 200 {
			t.Fatalf("alice's signing after the reset: %d %v", status, p)
		}
		run(t, []step{
			{"GET", aliceA, 200, wantUsage("uploads=1 pending=1 bytes=100 pending_bytes=100 remaining.uploads=1")},
			{"GET", aliceB, 200, wantUsage(bAlice)}, // the other handler's ledger, same key
			{"GET", bobA, 200, wantUsage("uploads=1 bytes=100")},
		})
	})

	t.Run("listing", func(t *testing.T) {
		status, _, body := adminAsk(t, "GET", "/oss_upload/")
		quotas := map[string]string{}
		for _, h := range body["handlers"].([]any) {
			h := h.(map[string]any)
			q, _ := json.Marshal(h["quota"])
			quotas[h["id"].(string)] = string(q)
		}
		want := map[string]string{
			e.a: `{"bytes":10000,"pending":3,"uploads":2,"window":"1h0m0s"}`,
			e.b: `{"bytes":10000,"pending":3,"uploads":3,"window":"1h0m0s"}`,
			e.c: `null`,
		}
		if status != 200 || len(quotas) != len(want) {
			t.Fatalf("%d %v", status, body)
		}
		for id, q := range want {
			if quotas[id] != q {
				t.Errorf("handler %s: quota %s, want %s", id, quotas[id], q)
			}
		}
		run(t, []step{{"GET", "/oss_upload/" + e.b, 200, wantUsage("quota.uploads=3 quota.window=1h0m0s served=true")}})
	})

	q := "/oss_upload/quota/"
	t.Run("errors", func(t *testing.T) {
		run(t, []step{
			{"GET", q + e.a, 400, errorSays("key is missing")},
			{"GET", q + e.a + "?user=alice", 400, errorSays("key is missing")},
			{"POST", q + e.a + "/reset", 400, errorSays("key is missing")},
			{"GET", q + e.a + "?key=alice&key=bob", 400, errorSays("given 2 times")},
			{"GET", q + e.a + "?key=al%2Aice", 400, errorSays("can be no quota key")},
			{"GET", q + e.a + "?key=%zz", 400, errorSays("does not parse")},
			{"GET", q + "ffffffffffffffffffffffffffffffff?key=alice", 404, errorSays("is configured here")},
			{"POST", q + "ffffffffffffffffffffffffffffffff/reset?key=alice", 404, errorSays("is configured here")},
			{"GET", q + strings.ToUpper(e.a) + "?key=alice", 404, errorSays("32 hex digits")},
			{"GET", q + e.c + "?key=alice", 404, errorSays("has no quota block")},
			{"POST", q + e.c + "/reset?key=alice", 404, errorSays("has no quota block")},
			{"GET", q + e.a + "/nothing?key=alice", 404, errorSays("no such oss_upload route")},
			{"GET", "/oss_upload/quota", 404, errorSays("no such oss_upload route")},
			{"POST", aliceA, 405, allowed("GET")},
			{"DELETE", aliceA, 405, allowed("GET")},
			{"GET", q + e.a + "/reset?key=alice", 405, allowed("POST")},
			{"DELETE", q + e.a + "/reset?key=alice", 405, allowed("POST")},
		})
		// A web page's request is refused by the admin endpoint itself.
		if status, body := adminRequest(t, "POST", q+e.a+"/reset?key=alice", "https://evil.example"); status != 403 {
			t.Errorf("a reset with a foreign Origin: %d %s", status, body)
		}
		// None of them changed a thing.
		run(t, []step{
			{"GET", aliceA, 200, wantUsage("uploads=1 pending=1")},
			{"GET", aliceB, 200, wantUsage(bAlice)},
		})
	})
}

// A handler whose key_prefix is empty counts the whole site under the
// empty key: its upload is reserved, settled by OSS's callback under the
// same key, read and reset with ?key=.
func TestAdminQuotaEmptyKeyPrefix(t *testing.T) {
	e := newConfirmEnv(t, confirmOpts{extra: "\n\t\tquota {\n\t\t\tuploads 1 per 1h\n\t\t}"})
	cfg := strings.Replace(e.config, "\n\t\tkey_prefix "+cfPrefix+"\n", "\n", 1)
	if cfg == e.config {
		t.Fatal("key_prefix was not removed")
	}
	e.tester.InitServer(cfg, "caddyfile")
	id := callback.HandlerID(secBucket, "", cfCbPath, e.opts.callbackURL)
	e.uploadAt(t, "localhost:9080", "alice")
	if status, _ := e.signAt(t, "localhost:9080", "bob"); status != 429 {
		t.Fatalf("a second upload on the site: %d, want 429", status)
	}
	for _, s := range []struct {
		method, path, want string
	}{
		{"GET", usagePath(id, ""), "key= uploads=1 pending=0 remaining.uploads=0"},
		{"POST", "/oss_upload/quota/" + id + "/reset?key=", "reset=true uploads=0"},
	} {
		status, header, body := adminAsk(t, s.method, s.path)
		if status != 200 {
			t.Fatalf("%s %s: %d %v", s.method, s.path, status, body)
		}
		wantUsage(s.want)(t, body, header)
	}
	if status, p := e.signAt(t, "localhost:9080", "bob"); status != 200 {
		t.Fatalf("signing after the reset: %d %v", status, p)
	}
}
