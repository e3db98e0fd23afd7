package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/quota"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

// quotaUser is the user whose quota the test uses up.
const quotaUser = "alice"

// quotaRun is two instances of one site with a quota, and the model of
// what their granted answers add up to.
type quotaRun struct {
	t      *testing.T
	c      quotaCase
	ins    [2]*instance
	emu    *ossemu.Emulator
	app    *objectApp
	client *http.Client
	toOSS  *http.Client
	grants []*grant // every signing answered 200, in order
}

// grant is a signing answered 200: the upload it allows and what it
// reserved.
type grant struct {
	on     int   // the instance that signed it
	bytes  int64 // reserved
	key    string
	url    string
	fields map[string]string
	token  string
	size   int64 // the verified upload's size; -1 until then
}

// signAnswer is the answer of one signing request.
type signAnswer struct {
	on      int
	status  int
	header  http.Header
	body    string
	grant   *grant       // of a 200
	refusal *refusalBody // of a 429
}

// refusalBody is a 429's JSON.
type refusalBody struct {
	Error string `json:"error"`
	Quota struct {
		Reason     string `json:"reason"`
		Limit      int64  `json:"limit"`
		Used       int64  `json:"used"`
		Asked      int64  `json:"asked"`
		RetryAt    string `json:"retry_at"`
		RetryAfter *int64 `json:"retry_after"`
	} `json:"quota"`
}

// quotaDim is one limit: its name (a refusal's reason), the header that
// tells what is left of it, and its value (0: no limit).
type quotaDim struct {
	name, header string
	limit        int64
	used         func(quota.Usage) int64
}

func (q *quotaRun) dims() []quotaDim {
	l := q.c.limits
	return []quotaDim{
		{"bytes", "X-Quota-Remaining-Bytes", l.Bytes, func(u quota.Usage) int64 { return u.Bytes }},
		{"uploads", "X-Quota-Remaining-Uploads", l.Uploads, func(u quota.Usage) int64 { return u.Uploads }},
		{"pending", "X-Quota-Remaining-Pending", l.Pending, func(u quota.Usage) int64 { return u.Pending }},
	}
}

// usage is what the granted answers add up to: an upload and its reserved
// bytes for each pending one, an upload and its size for each verified
// one (nothing leaves the window or expires during the test).
func (q *quotaRun) usage() quota.Usage {
	var u quota.Usage
	for _, g := range q.grants {
		u.Uploads++
		if g.size < 0 {
			u.Pending++
			u.Bytes += g.bytes
		} else {
			u.Bytes += g.size
		}
	}
	return u
}

// startQuotaRun starts two instances of one site with c's quota, on the
// given storages, with its emulator and app. OSS's callbacks go nowhere:
// the test sends them itself.
func startQuotaRun(t *testing.T, storage [2]string, c quotaCase) *quotaRun {
	emu, keyFile := startEmulator(t)
	q := &quotaRun{t: t, c: c, emu: emu, app: newObjectApp(t), toOSS: emulatorClient(emu),
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: quotaHammer}}}
	q.app.up(t)
	for i := range q.ins {
		in := &instance{t: t, port: freePort(t), home: t.TempDir(), header: http.Header{"X-User": {"probe"}}}
		in.config = siteConfig(storage[i], in.port, emu, fmt.Sprintf(`
		key_prefix uploads/{http.request.header.X-User}/
		max_size 1KB
		confirm_path /oss/confirm
		callback {
			url http://127.0.0.1:9/oss/callback
			trusted_key %s
			answer_within 2s
		}
		quota {
			key {http.request.header.X-User}
			%s
		}`, keyFile, c.block), q.app.addr)
		in.start()
		q.ins[i] = in
	}
	return q
}

// sign asks instance i for a PostObject policy for quotaUser, declaring
// size when it is not 0.
func (q *quotaRun) sign(i int, size int64) signAnswer {
	target := fmt.Sprintf("http://localhost:%d/oss/post-policy?filename=f.txt&type=text/plain", q.ins[i].port)
	if size > 0 {
		target += fmt.Sprintf("&size=%d", size)
	}
	req, _ := http.NewRequest("GET", target, nil)
	req.Header.Set("X-User", quotaUser)
	a := signAnswer{on: i}
	resp, err := q.client.Do(req)
	if err != nil {
		a.body = err.Error()
		return a
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.status, a.header, a.body = resp.StatusCode, resp.Header, string(b)
	switch a.status {
	case http.StatusOK:
		var p struct {
			URL     string            `json:"url"`
			Key     string            `json:"key"`
			Fields  map[string]string `json:"fields"`
			Confirm struct {
				Token string `json:"token"`
			} `json:"confirm"`
		}
		if err := json.Unmarshal(b, &p); err != nil || p.Confirm.Token == "" {
			a.status, a.body = 0, fmt.Sprintf("unreadable policy (%v): %s", err, b)
			return a
		}
		reserved := int64(quotaMaxSize)
		if q.c.limits.Bytes > 0 && size > 0 {
			reserved = size
		}
		a.grant = &grant{on: i, bytes: reserved, key: p.Key, url: p.URL, fields: p.Fields, token: p.Confirm.Token, size: -1}
	case http.StatusTooManyRequests:
		var r refusalBody
		if json.Unmarshal(b, &r) == nil && r.Quota.Reason != "" {
			a.refusal = &r
		}
	}
	return a
}

// settle uploads every pending grant (half its reserved bytes) and
// verifies it on the other instance than the one that signed it, by its
// confirm or its callback, all at once; then it sends the other of the two
// to the signer, which must take it as the same upload.
func (q *quotaRun) settle() {
	t := q.t
	var pending []*grant
	for _, g := range q.grants {
		if g.size < 0 {
			pending = append(pending, g)
		}
	}
	if len(pending) == 0 {
		return
	}
	for _, g := range pending {
		q.upload(g, max(1, g.bytes/2))
	}
	callbacks := map[string]ossemu.CallbackRecord{}
	for _, cb := range q.emu.Callbacks() {
		callbacks[objectOf([]byte(cb.Body))] = cb
	}
	verify := func(g *grant, on int, byConfirm bool) int {
		if byConfirm {
			return q.confirm(on, g)
		}
		cb, ok := callbacks[g.key]
		if !ok {
			t.Errorf("OSS sent no callback for %s", g.key)
			return 0
		}
		return q.callback(on, cb)
	}
	var wg sync.WaitGroup
	for k, g := range pending {
		wg.Go(func() {
			if s := verify(g, 1-g.on, k%2 == 0); s != http.StatusOK {
				t.Errorf("verifying %s on instance %d (signed on %d): %d", g.key, 1-g.on, g.on, s)
			}
		})
	}
	wg.Wait()
	for k, g := range pending {
		if s := verify(g, g.on, k%2 != 0); s != http.StatusOK {
			t.Errorf("the other copy of %s on instance %d: %d", g.key, g.on, s)
		}
		g.size = max(1, g.bytes/2)
	}
}

// upload stores n bytes in OSS with g's policy; OSS's callback fails (its
// url goes nowhere), so OSS answers 203 and keeps the object.
func (q *quotaRun) upload(g *grant, n int64) {
	t := q.t
	resp, err := postObject(q.toOSS, g.url, g.fields, "f.txt", strings.Repeat("q", int(n)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 203 {
		t.Fatalf("upload of %s: OSS answered %d %s, want 203 (its callback goes nowhere)", g.key, resp.StatusCode, b)
	}
}

func (q *quotaRun) confirm(i int, g *grant) int {
	b, _ := json.Marshal(map[string]string{"key": g.key, "token": g.token})
	resp, err := q.client.Post(fmt.Sprintf("http://localhost:%d/oss/confirm", q.ins[i].port), "application/json", bytes.NewReader(b))
	if err != nil {
		q.t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (q *quotaRun) callback(i int, cb ossemu.CallbackRecord) int {
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/oss/callback", q.ins[i].port), strings.NewReader(cb.Body))
	for k, vs := range cb.Header {
		if k != "Content-Length" && k != "Host" {
			req.Header[k] = vs
		}
	}
	resp, err := q.client.Do(req)
	if err != nil {
		q.t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
