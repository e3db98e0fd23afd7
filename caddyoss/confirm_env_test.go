package caddyoss

// The environment of the confirm route's tests: a running Caddy whose
// oss_upload has a confirm route (and, unless confirm_only, asks OSS for
// callbacks), ossemu, and the app that records what it receives. Uploads
// go through every mode; the tests then confirm them, forge and replay
// confirms and callbacks, and assert what the app saw.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

const (
	cfPrefix     = "uploads/{http.request.header.X-User}/"
	cfCbPath     = "/oss/callback"
	cfConfirm    = "/oss/confirm"
	cfBindingKey = "confirm-tests-binding-key-0123456789abcdef"
	// cfUnreachable is a callback URL nothing listens on: OSS's callbacks
	// fail (the uploader gets 203) and stay in ossemu's log, for a test to
	// send to Caddy when it chooses.
	cfUnreachable = "http://127.0.0.1:9/oss/callback"
)

// confirmOpts configure a confirmEnv.
type confirmOpts struct {
	callbackURL string // default the site's own /oss/callback
	confirmOnly bool
	json        bool   // body_type json
	extra       string // more lines in oss_upload
	global      string // more global options
}

type confirmEnv struct {
	*secEnv
	opts      confirmOpts
	handlerID string
}

func newConfirmEnv(t *testing.T, opts confirmOpts) *confirmEnv {
	t.Helper()
	if opts.callbackURL == "" {
		opts.callbackURL = "http://localhost:9080" + cfCbPath
	}
	emu, keyFile := startEmu(t, ossemu.Options{
		Buckets:    []string{secBucket},
		AccessKeys: map[string]string{"sec-ak": "sec-secret"},
		Roles:      []ossemu.Role{{ARN: secRole}},
	})
	env := &confirmEnv{secEnv: &secEnv{emu: emu, app: newSecApp(t), tester: newTester(t), toOSS: loopbackClient(emu.Addr())}, opts: opts}
	cb := "\n\t\t\tbinding_key " + cfBindingKey
	if opts.confirmOnly {
		cb += "\n\t\t\tconfirm_only"
	}
	if opts.json {
		cb += "\n\t\t\tbody_type json"
	}
	env.config = appSite(t, emu, secBucket, "sec-ak", "sec-secret", `
		key_prefix `+cfPrefix+`
		allow_types image/* application/pdf
		max_size 1KB
		min_size 2
		confirm_path `+cfConfirm+`
		sts {
			role_arn `+secRole+`
			endpoint `+emu.STSEndpoint()+`
			duration 15m
		}
		callback {
			url `+opts.callbackURL+`
			var user {http.request.header.X-User}
			trusted_key `+keyFile+cb+`
		}
		`+opts.extra, strings.TrimPrefix(env.app.URL, "http://"))
	env.config = strings.Replace(env.config, "persist_config off\n", "persist_config off\n"+opts.global, 1)
	env.tester.InitServer(env.config, "caddyfile")
	env.handlerID = callback.HandlerID(secBucket, cfPrefix, cfCbPath, opts.callbackURL)
	return env
}

// confirmInfo is the confirm object of a signing answer.
type confirmInfo struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// upload is one upload through a mode, with what its signing answer said.
type cfUpload struct {
	key     string
	token   string
	status  int    // OSS's answer to the uploader
	answer  string // its body
	signing map[string]any
}

func confirmOf(t *testing.T, v any) confirmInfo {
	t.Helper()
	b, _ := json.Marshal(v)
	var c confirmInfo
	if err := json.Unmarshal(b, &c); err != nil || c.URL != cfConfirm || c.Token == "" {
		t.Fatalf("no confirm object in the answer: %s", b)
	}
	return c
}

// postObject uploads data as user through the post-policy route.
func (e *confirmEnv) postObject(t *testing.T, user, name, typ string, data []byte) cfUpload {
	t.Helper()
	q := url.Values{"filename": {name}, "type": {typ}, "size": {strconv.Itoa(len(data))}}
	status, p, body := e.get(t, "/oss/post-policy?"+q.Encode(), user)
	if status != 200 {
		t.Fatalf("post-policy: %d %s", status, body)
	}
	var fields [][2]string
	for k, v := range p["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	up := cfUpload{key: p["key"].(string), token: confirmOf(t, p["confirm"]).Token, signing: p}
	up.status, up.answer = e.postForm(t, p["url"].(string), fields, typ, data)
	return up
}

// presignPut uploads data as user through a presigned PUT URL.
func (e *confirmEnv) presignPut(t *testing.T, user, name, typ string, data []byte) cfUpload {
	t.Helper()
	q := url.Values{"filename": {name}, "type": {typ}}
	status, p, body := e.get(t, "/oss/presign?"+q.Encode(), user)
	if status != 200 {
		t.Fatalf("presign: %d %s", status, body)
	}
	return e.presignPutURL(t, p, data)
}

// presignPutURL uploads data with a presign route's answer p.
func (e *confirmEnv) presignPutURL(t *testing.T, p map[string]any, data []byte) cfUpload {
	t.Helper()
	req, _ := http.NewRequest("PUT", p["url"].(string), bytes.NewReader(data))
	for k, v := range p["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	resp, err := e.toOSS.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return cfUpload{key: p["key"].(string), token: confirmOf(t, p["confirm"]).Token, status: resp.StatusCode, answer: string(b), signing: p}
}

// stsSession is an SDK client with the STS route's credentials for a
// user, and the confirm token that came with them.
type stsSession struct {
	bucket *oss.Bucket
	prefix string
	token  string
	answer map[string]any
}

func (e *confirmEnv) stsSession(t *testing.T, user string) stsSession {
	t.Helper()
	status, c, body := e.get(t, "/oss/sts", user)
	if status != 200 || c["AccessKeyId"] == nil {
		t.Fatalf("sts: %d %s", status, body)
	}
	return e.stsSessionOf(t, c)
}

// stsSessionOf is the session of an STS route's answer c.
func (e *confirmEnv) stsSessionOf(t *testing.T, c map[string]any) stsSession {
	t.Helper()
	client, err := oss.New(c["Endpoint"].(string), c["AccessKeyId"].(string), c["AccessKeySecret"].(string),
		oss.SecurityToken(c["SecurityToken"].(string)), oss.UseCname(true), oss.Region("cn-hangzhou"),
		oss.AuthVersion(oss.AuthV4), oss.HTTPClient(e.toOSS))
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.Bucket(secBucket)
	if err != nil {
		t.Fatal(err)
	}
	return stsSession{bucket: b, prefix: c["Prefix"].(string), token: confirmOf(t, c["Confirm"]).Token, answer: c}
}

// put stores an object below the session's prefix, without a callback.
func (s stsSession) put(t *testing.T, name, typ string, data []byte) cfUpload {
	t.Helper()
	key := s.prefix + name
	if err := s.bucket.PutObject(key, bytes.NewReader(data), oss.ContentType(typ)); err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
	return cfUpload{key: key, token: s.token, status: 200}
}

// confirm sends {"key", "token"} to the confirm route and returns the
// answer.
func (e *confirmEnv) confirm(t *testing.T, key, token string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"key": key, "token": token})
	return e.confirmRaw(t, "POST", string(b))
}

// confirmRaw sends body to the confirm route with method.
func (e *confirmEnv) confirmRaw(t *testing.T, method, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://localhost:9080"+cfConfirm, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	status, b := e.ask(t, req, "")
	return status, string(b)
}

// lastCallback is the callback ossemu last sent (or tried to) for key.
func (e *confirmEnv) lastCallback(t *testing.T, key string) ossemu.CallbackRecord {
	t.Helper()
	cbs := e.emu.Callbacks()
	for i := len(cbs) - 1; i >= 0; i-- {
		if strings.Contains(cbs[i].Body, url.QueryEscape(key)) || strings.Contains(cbs[i].Body, jsonQuote(key)) {
			return cbs[i]
		}
	}
	t.Fatalf("ossemu sent no callback for %s", key)
	return ossemu.CallbackRecord{}
}

// sendCallback sends a callback ossemu recorded to Caddy's callback path,
// as OSS would have, and returns the status.
func (e *confirmEnv) sendCallback(t *testing.T, cb ossemu.CallbackRecord) int {
	t.Helper()
	status, _ := resend(t, cb, cfCbPath, cb.Body, nil)
	return status
}

// appFields reads a body the app received, form or JSON, by field.
func appFields(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if strings.HasPrefix(body, "{") {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("the app received a body that is not JSON: %s", body)
		}
		for k, v := range m {
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	q, err := url.ParseQuery(body)
	if err != nil {
		t.Fatalf("the app received a body that is not a form: %s", body)
	}
	for k := range q {
		if len(q[k]) != 1 {
			t.Fatalf("the app received the field %s %d times", k, len(q[k]))
		}
		out[k] = q.Get(k)
	}
	return out
}

// checkDelivered asserts that req, received by the app, is the verified
// upload of key under token, with OSS's facts of the stored object and
// nothing else: the rebuilt request, the template's fields, the token's
// variables, and the Idempotency-Key of the upload's event.
func (e *confirmEnv) checkDelivered(t *testing.T, req secReq, key, token, user string) {
	t.Helper()
	obj, ok := e.emu.Object(secBucket, key)
	if !ok {
		t.Fatalf("%s is not stored", key)
	}
	b, _, err := callback.ParseConfirmToken(token)
	if err != nil {
		t.Fatal(err)
	}
	etag := strings.Trim(obj.ETag, `"`)
	want := map[string]string{
		"bucket": secBucket, "object": key, "etag": etag, "size": strconv.Itoa(len(obj.Data)),
		"mimeType": obj.ContentType, "user": user, bindingVar: b.String(),
	}
	got := appFields(t, req.body)
	if len(got) != len(want) {
		t.Errorf("the app received the fields %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("the app received %s=%q, want %q (what OSS stores)", k, got[k], v)
		}
	}
	if req.method != "POST" || req.uri != cfCbPath || req.header.Get(verifiedHeader) != "true" {
		t.Errorf("the app received %s %s verified %q", req.method, req.uri, req.header.Get(verifiedHeader))
	}
	if id := callback.EventID(e.handlerID, secBucket, key, etag, b.String()); req.header.Get("Idempotency-Key") != id {
		t.Errorf("Idempotency-Key %q, want the upload's event id %q", req.header.Get("Idempotency-Key"), id)
	}
	wantType := "application/x-www-form-urlencoded"
	if e.opts.json {
		wantType = "application/json"
	}
	if ct := req.header.Get("Content-Type"); ct != wantType {
		t.Errorf("Content-Type %q, want %q", ct, wantType)
	}
}

// deliveredOnce asserts that the app received each of keys exactly once,
// and nothing else, and returns the requests by key.
func (e *confirmEnv) deliveredOnce(t *testing.T, keys ...string) map[string]secReq {
	t.Helper()
	// A queued attempt may still be on its way: wait a moment for it.
	time.Sleep(50 * time.Millisecond)
	byKey := map[string]secReq{}
	for _, r := range e.app.all() {
		if r.header.Get(verifiedHeader) != "true" {
			t.Errorf("the app received an unverified request: %s %s", r.method, r.uri)
			continue
		}
		k := appFields(t, r.body)["object"]
		if _, dup := byKey[k]; dup {
			t.Errorf("the app received %s twice", k)
		}
		byKey[k] = r
	}
	for _, k := range keys {
		if _, ok := byKey[k]; !ok {
			t.Errorf("the app never received %s", k)
		}
	}
	if len(byKey) != len(keys) {
		t.Errorf("the app received %d uploads, want %d", len(byKey), len(keys))
	}
	return byKey
}
