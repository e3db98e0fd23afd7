package caddyoss

// Adversarial tests of docs/security.md's promises, through a running
// Caddy, ossemu and an upstream app that records everything it receives.
// Each test generates its variants and then asserts what the app saw.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-oss/caddy-oss/internal/callback/callbacktest"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

const (
	secBucket  = "sec-bucket"
	evilBucket = "evil-bucket"
	secRole    = "acs:ram::1234567890123456:role/sec-uploader"
	secCbPath  = "/api/any"
)

// secApp is the legacy app: it records every request it receives.
type secApp struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []secReq
}

type secReq struct {
	method, uri string
	header      http.Header
	body        string
}

func (r secReq) form() url.Values { v, _ := url.ParseQuery(r.body); return v }

func newSecApp(t *testing.T) *secApp {
	a := &secApp{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, secReq{r.Method, r.RequestURI, r.Header.Clone(), string(b)})
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *secApp) all() []secReq {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]secReq(nil), a.reqs...)
}

// verified are the requests the app would trust as callbacks.
func (a *secApp) verified() []secReq {
	var out []secReq
	for _, r := range a.all() {
		for name, vs := range r.header {
			if sameHeaderName(name, verifiedHeader) && len(vs) > 0 {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

type secEnv struct {
	emu     *ossemu.Emulator
	app     *secApp
	tester  *caddytest.Tester
	toOSS   *http.Client
	config  string
	pubKeyB string // base64 x-oss-pub-key-url of the emulator
}

// newSecEnv runs the emulator (the site's bucket and an attacker's account
// with its own bucket), the app, and Caddy with oss_upload in front of it.
func newSecEnv(t *testing.T, extra string) *secEnv {
	t.Helper()
	emu, keyFile := startEmu(t, ossemu.Options{
		Buckets:    []string{secBucket, evilBucket},
		AccessKeys: map[string]string{"sec-ak": "sec-secret", "evil-ak": "evil-secret"},
		Roles:      []ossemu.Role{{ARN: secRole}},
	})
	env := &secEnv{emu: emu, app: newSecApp(t), tester: newTester(t), toOSS: loopbackClient(emu.Addr()),
		pubKeyB: base64.StdEncoding.EncodeToString([]byte("http://" + emu.Addr() + ossemu.CallbackPublicKeyPath))}
	env.config = testGlobal(t) + `
http://localhost:9080 {
	oss_upload {
		bucket ` + secBucket + `
		region cn-hangzhou
		endpoint ` + emu.Endpoint() + `
		upload_url ` + emu.BucketURL(secBucket) + `
		access_key_id sec-ak
		access_key_secret sec-secret
		key_prefix uploads/{http.request.header.X-User}/
		allow_types image/* application/pdf
		max_size 1KB
		callback_path ` + secCbPath + `
		sts {
			role_arn ` + secRole + `
			endpoint ` + emu.STSEndpoint() + `
			session_name web-{http.request.header.X-User}
			duration 15m
		}
		callback {
			url http://localhost:9080` + secCbPath + `
			var user {http.request.header.X-User}
			trusted_key ` + keyFile + `
		}
		` + extra + `
	}
	reverse_proxy ` + strings.TrimPrefix(env.app.URL, "http://") + `
}`
	env.tester.InitServer(env.config, "caddyfile")
	return env
}

// get asks a signing route as a user.
func (e *secEnv) get(t *testing.T, path, user string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://localhost:9080"+path, nil)
	req.Header.Set("X-User", user)
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, string(b)
}

// stsUploader is an SDK client with the STS route's credentials for user,
// and the callback headers the route issued with them.
func (e *secEnv) stsUploader(t *testing.T, user string) (b *oss.Bucket, callbackParam, callbackVars string) {
	t.Helper()
	_, c, body := e.get(t, "/oss/sts", user)
	if c["AccessKeyId"] == nil {
		t.Fatalf("sts: %s", body)
	}
	client, err := oss.New(c["Endpoint"].(string), c["AccessKeyId"].(string), c["AccessKeySecret"].(string),
		oss.SecurityToken(c["SecurityToken"].(string)), oss.UseCname(true), oss.Region("cn-hangzhou"),
		oss.AuthVersion(oss.AuthV4), oss.HTTPClient(e.toOSS))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = client.Bucket(secBucket); err != nil {
		t.Fatal(err)
	}
	headers := c["CallbackHeaders"].(map[string]any)
	return b, headers["x-oss-callback"].(string), headers["x-oss-callback-var"].(string)
}

// postForm sends form fields in the order given, then the file, to url.
func (e *secEnv) postForm(t *testing.T, target string, fields [][2]string, fileType string, data []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		_ = mw.WriteField(f[0], f[1])
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="f.png"`}
	h["Content-Type"] = []string{fileType}
	fw, _ := mw.CreatePart(h)
	_, _ = fw.Write(data)
	_ = mw.Close()
	resp, err := e.toOSS.Post(target, mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawRequest writes a request line and headers exactly as given (no client
// normalizes the path or the header names) and returns the status.
func rawRequest(t *testing.T, method, target string, headers [][2]string, body string) int {
	t.Helper()
	return rawRequestTo(t, "localhost:9080", method, target, headers, body)
}

// rawRequestTo is rawRequest to another site of the test's Caddy.
func rawRequestTo(t *testing.T, host, method, target string, headers [][2]string, body string) int {
	t.Helper()
	// Right after a config load a connection may land on the server being
	// replaced, which closes it: try again on a new one.
	for attempt := 0; ; attempt++ {
		status, err := rawRequestOnce(host, method, target, headers, body)
		if err == nil {
			return status
		}
		if attempt == 3 {
			t.Fatalf("%s %q: %v", method, target, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func rawRequestOnce(host, method, target string, headers [][2]string, body string) (int, error) {
	_, port, _ := net.SplitHostPort(host)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, target, host, len(body))
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// verifiedHeaderSpellings are names an upstream may read as the header.
var verifiedHeaderSpellings = []string{
	"X-Oss-Callback-Verified", "x-oss-callback-verified", "X-OSS-CALLBACK-VERIFIED",
	"X-Oss-Callback_Verified", "x_oss_callback_verified", "X_OSS_CALLBACK_VERIFIED", "x-Oss_callback-verifieD",
}

// 1. Every spelling of the callback path is verified or refused, and no
// client's copy of the verified header reaches the app, on any path.
func TestSecurityCallbackPathVariants(t *testing.T) {
	env := newSecEnv(t, "")
	body := "bucket=" + secBucket + "&object=uploads/alice/x.png&etag=E&size=1&mimeType=image%2Fpng&user=alice"
	variants := callbacktest.PathVariants(secCbPath)
	if len(variants) < 60 {
		t.Fatalf("only %d variants", len(variants))
	}
	for _, v := range append(variants, secCbPath) {
		for _, method := range []string{"POST", "GET", "PUT"} {
			hdr := [][2]string{{"Content-Type", "application/x-www-form-urlencoded"},
				{"Authorization", base64.StdEncoding.EncodeToString(make([]byte, 64))}, {"X-Oss-Pub-Key-Url", env.pubKeyB}}
			for _, name := range verifiedHeaderSpellings {
				hdr = append(hdr, [2]string{name, "true"})
			}
			if status := rawRequest(t, method, v, hdr, body); status < 400 || status > 499 {
				t.Errorf("%s %q: status %d, want a refusal", method, v, status)
			}
		}
	}
	if got := env.app.all(); len(got) != 0 {
		t.Fatalf("the app received %d forged callbacks, first %s %s", len(got), got[0].method, got[0].uri)
	}

	// Other paths reach the app, without any spelling of the header: with
	// Caddy's defaults (it drops names with '_'), and with a server that
	// lets such names through.
	allowUnderscores := strings.Replace(env.config, "persist_config off\n",
		"persist_config off\n\tservers {\n\t\texpected_underscore_headers x_* x-oss-callback_*\n\t}\n", 1)
	for round, config := range []string{env.config, allowUnderscores} {
		env.tester.InitServer(config, "caddyfile")
		before := len(env.app.all())
		for _, p := range []string{"/", "/app/upload", "/api/anyx", "/api/any-json", "/api", "/oss/post-policyx", "/api/x/any"} {
			hdr := [][2]string{{"X-Oss-Callback_probe", "kept?"}}
			for _, name := range verifiedHeaderSpellings {
				hdr = append(hdr, [2]string{name, "true"})
			}
			if status := rawRequest(t, "POST", p, hdr, "x=1"); status != 200 {
				t.Errorf("%s: status %d", p, status)
			}
		}
		got := env.app.all()[before:]
		if len(got) != 7 {
			t.Fatalf("round %d: the app received %d requests, want 7", round, len(got))
		}
		if round == 1 && got[0].header.Get("X-Oss-Callback_probe") == "" {
			t.Fatalf("round 1 should pass underscore names through: %v", got[0].header)
		}
		if v := env.app.verified(); len(v) != 0 {
			t.Fatalf("round %d: a client's verified header reached the app: %v", round, v[0].header)
		}
	}
}

// bindingFrom returns the x:oss_binding a presign URL carries.
func bindingFrom(t *testing.T, presignURL string) (string, string) {
	t.Helper()
	u, _ := url.Parse(presignURL)
	cbv, _ := base64.StdEncoding.DecodeString(u.Query().Get("callback-var"))
	var vars map[string]string
	if err := json.Unmarshal(cbv, &vars); err != nil || vars["x:oss_binding"] == "" {
		t.Fatalf("callback-var %s", cbv)
	}
	return vars["x:oss_binding"], vars["x:user"]
}

func b64JSON(v any) string {
	b, _ := json.Marshal(v)
	return base64.StdEncoding.EncodeToString(b)
}

// 2. Genuinely signed callbacks that this site did not issue: OSS signs
// every account's callbacks with one key, so an attacker's own account can
// make OSS post any body to the site's callback URL.
func TestSecurityForeignCallbacks(t *testing.T) {
	env := newSecEnv(t, "")
	_, p, _ := env.get(t, "/oss/presign?filename=m.png&type=image/png", "mallory")
	mKey := p["key"].(string)
	mBinding, _ := bindingFrom(t, p["url"].(string))
	_, s, _ := env.get(t, "/oss/sts", "mallory")
	sBinding := s["Callback"].(map[string]any)["customValue"].(map[string]any)["oss_binding"].(string)
	// A real object of the site, under mallory's prefix, for the variants
	// that claim it with other facts.
	if err := env.emu.PutObject(secBucket, "uploads/mallory/real.png", []byte("real bytes"), "image/png"); err != nil {
		t.Fatal(err)
	}

	evil, err := oss.New(env.emu.Endpoint(), "evil-ak", "evil-secret", oss.HTTPClient(env.toOSS))
	if err != nil {
		t.Fatal(err)
	}
	bucket, _ := evil.Bucket(evilBucket)
	cbURL := "http://localhost:9080" + secCbPath
	honest := "bucket=${bucket}&object=${object}&etag=${etag}&size=${size}&mimeType=${mimeType}&user=${x:user}&oss_binding=${x:oss_binding}"
	lit := func(object, etag, size, mime, user, binding string) string {
		return "bucket=" + secBucket + "&object=" + url.QueryEscape(object) + "&etag=" + etag + "&size=" + size +
			"&mimeType=" + url.QueryEscape(mime) + "&user=" + user + "&oss_binding=" + url.QueryEscape(binding)
	}
	tamperedExp := strings.Replace(mBinding, ".1", ".2", 1)
	asPrefix := strings.Replace(mBinding, "1.k.", "1.p.", 1)
	variants := []struct {
		name, body string
		vars       map[string]string
	}{
		{"no binding", "bucket=${bucket}&object=${object}&etag=${etag}&size=${size}&mimeType=${mimeType}&user=${x:user}", map[string]string{"x:user": "alice"}},
		{"copied binding, own bucket", honest, map[string]string{"x:user": "mallory", "x:oss_binding": mBinding}},
		{"copied binding, claimed key that does not exist", lit(mKey, "ABC", "5", "image/png", "mallory", mBinding), nil},
		{"STS binding, object outside prefix", lit("uploads/alice/x.png", "ABC", "5", "image/png", "mallory", sBinding), nil},
		{"STS binding, other user", lit("uploads/mallory/real.png", "ABC", "10", "image/png", "alice", sBinding), nil},
		{"STS binding, real object, false size", lit("uploads/mallory/real.png", "ABC", "999", "image/png", "mallory", sBinding), nil},
		{"STS binding, real object, false type", lit("uploads/mallory/real.png", "ABC", "10", "text/html", "mallory", sBinding), nil},
		{"STS binding, real object, false etag", lit("uploads/mallory/real.png", "ABC", "10", "image/png", "mallory", sBinding), nil},
		{"STS binding, extra field", lit("uploads/mallory/real.png", "ABC", "10", "image/png", "mallory", sBinding) + "&admin=true", nil},
		{"tampered expiry", lit(mKey, "ABC", "5", "image/png", "mallory", tamperedExp), nil},
		{"exact-key binding read as prefix", lit(mKey, "ABC", "5", "image/png", "mallory", asPrefix), nil},
		{"other bucket named", strings.Replace(lit(mKey, "ABC", "5", "image/png", "mallory", mBinding), "bucket="+secBucket, "bucket="+evilBucket, 1), nil},
		{"json body", `{"bucket":"` + secBucket + `","object":"` + mKey + `","user":"mallory","oss_binding":"` + mBinding + `"}`, nil},
	}
	for i, v := range variants {
		param := b64JSON(map[string]string{"callbackUrl": cbURL, "callbackBody": v.body})
		opts := []oss.Option{oss.Callback(param)}
		if v.vars != nil {
			opts = append(opts, oss.CallbackVar(b64JSON(v.vars)))
		}
		err := bucket.PutObject(fmt.Sprintf("drop/%d.png", i), strings.NewReader("evil"), opts...)
		var se oss.ServiceError
		if !errors.As(err, &se) || se.StatusCode != 203 {
			t.Errorf("%s: the uploader got %v, want 203 CallbackFailed", v.name, err)
		}
	}
	if got := env.app.all(); len(got) != 0 {
		t.Fatalf("the app received %d foreign callbacks, first %s", len(got), got[0].body)
	}
	if n := len(env.emu.Callbacks()); n != len(variants) {
		t.Fatalf("%d callbacks were sent, want %d", n, len(variants))
	}
}

// 3. A genuine callback reaches the app once, however often and however it
// is sent again; copies get 200 with JSON and stay out of the app, also
// after a config reload (the records are in Caddy's storage).
func TestSecurityReplays(t *testing.T) {
	env := newSecEnv(t, "")
	_, p, _ := env.get(t, "/oss/post-policy?filename=a.png&type=image/png&size=4", "alice")
	var fields [][2]string
	for k, v := range p["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	if status, body := env.postForm(t, p["url"].(string), fields, "image/png", []byte("png!")); status != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("upload: %d %s", status, body)
	}
	got := env.app.verified()
	if len(got) != 1 || got[0].form().Get("object") != p["key"] || got[0].form().Get("user") != "alice" {
		t.Fatalf("app received %+v", got)
	}
	// The app got none of OSS's headers: the copies are of what OSS sent.
	sent := env.emu.Callbacks()
	orig := sent[len(sent)-1]
	origURL, _ := url.Parse(orig.URL)
	// A new connection per copy: a reload closes kept-alive ones.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	replay := func(mutate func(h http.Header)) (int, string) {
		req, _ := http.NewRequest("POST", "http://localhost:9080"+origURL.RequestURI(), strings.NewReader(orig.Body))
		for _, k := range []string{"Authorization", "X-Oss-Pub-Key-Url", "Content-Type", "Content-Md5", "Date", "X-Oss-Request-Id", "X-Oss-Bucket"} {
			if v := orig.Header.Get(k); v != "" {
				req.Header.Set(k, v)
			}
		}
		if mutate != nil {
			mutate(req.Header)
		}
		req.URL.Host = "127.0.0.1:9080"
		req.Host = "localhost:9080"
		resp, err := fresh.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	mutations := []func(http.Header){
		nil,
		func(h http.Header) { h.Set("X-Oss-Request-Id", "another") },
		func(h http.Header) { h.Set("Date", time.Now().Add(time.Hour).Format(http.TimeFormat)) },
		func(h http.Header) { h.Set("Content-Type", "application/json") },
		func(h http.Header) { h.Del("Content-Md5") },
		func(h http.Header) { h.Set(verifiedHeader, "true") },
		func(h http.Header) { h.Set("X-Oss-Bucket", evilBucket) },
	}
	for i, m := range mutations {
		if status, body := replay(m); status != 200 || body != `{"status":"duplicate"}` {
			t.Errorf("replay %d: %d %q", i, status, body)
		}
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, _ := replay(nil); status != 200 {
				t.Errorf("concurrent replay: %d", status)
			}
		}()
	}
	wg.Wait()
	// A reload builds a new handler; the records are in storage.
	env.tester.InitServer(strings.Replace(env.config, "max_size 1KB", "max_size 2KB", 1), "caddyfile")
	if status, _ := replay(nil); status != 200 {
		t.Errorf("replay after reload: %d", status)
	}
	if n := len(env.app.all()); n != 1 {
		t.Fatalf("the app received the callback %d times", n)
	}
}

// 4. An uploader with STS credentials writes the callback parameter
// itself; the app only hears the truth about uploads in its prefix, with the
// variables the site issued.
func TestSecuritySTSUploaderCallbacks(t *testing.T) {
	env := newSecEnv(t, "")
	b, issuedParam, issuedVars := env.stsUploader(t, "bob")
	raw, _ := base64.StdEncoding.DecodeString(issuedParam)
	var param map[string]string
	_ = json.Unmarshal(raw, &param)
	rawVars, _ := base64.StdEncoding.DecodeString(issuedVars)
	var vars map[string]string
	_ = json.Unmarshal(rawVars, &vars)
	if vars["x:user"] != "bob" || vars["x:oss_binding"] == "" {
		t.Fatalf("issued vars %v", vars)
	}
	withBody := func(body string) string {
		p := map[string]string{}
		for k, v := range param {
			p[k] = v
		}
		p["callbackBody"] = body
		return b64JSON(p)
	}
	withVars := func(edit func(map[string]string)) string {
		v := map[string]string{}
		for k, x := range vars {
			v[k] = x
		}
		edit(v)
		return b64JSON(v)
	}
	tpl := param["callbackBody"]
	variants := []struct {
		name, param, vars string
	}{
		{"user var changed", issuedParam, withVars(func(v map[string]string) { v["x:user"] = "alice" })},
		{"binding dropped", issuedParam, withVars(func(v map[string]string) { delete(v, "x:oss_binding") })},
		{"extra var", withBody(tpl + "&admin=${x:admin}"), withVars(func(v map[string]string) { v["x:admin"] = "1" })},
		{"extra constant", withBody(tpl + "&admin=1"), issuedVars},
		{"object claimed elsewhere", withBody(strings.Replace(tpl, "${object}", "uploads%2Falice%2Fx.png", 1)), issuedVars},
		{"size made up", withBody(strings.Replace(tpl, "${size}", "1", 1)), issuedVars},
		{"type made up", withBody(strings.Replace(tpl, "${mimeType}", "text%2Fhtml", 1)), issuedVars},
		{"etag made up", withBody(strings.Replace(tpl, "${etag}", "0123456789ABCDEF0123456789ABCDEF", 1)), issuedVars},
		{"bucket made up", withBody(strings.Replace(tpl, "${bucket}", evilBucket, 1)), issuedVars},
		{"user written as a constant", withBody(strings.Replace(tpl, "${x:user}", "alice", 1)), issuedVars},
		{"field renamed", withBody(strings.Replace(tpl, "user=", "owner=", 1)), issuedVars},
		{"json body", withBody(`{"object":${object}}`), issuedVars},
	}
	for i, v := range variants {
		err := b.PutObject(fmt.Sprintf("uploads/bob/v%d.png", i), strings.NewReader("bytes"), oss.ContentType("image/png"),
			oss.Callback(v.param), oss.CallbackVar(v.vars))
		var se oss.ServiceError
		if !errors.As(err, &se) || se.StatusCode != 203 {
			t.Errorf("%s: %v, want 203 CallbackFailed", v.name, err)
		}
	}
	if got := env.app.all(); len(got) != 0 {
		t.Fatalf("the app received %d forged STS callbacks, first %s", len(got), got[0].body)
	}
	// The parameter as issued: delivered, with OSS's facts.
	var result []byte
	if err := b.PutObject("uploads/bob/honest.png", strings.NewReader("honest"), oss.ContentType("image/png"),
		oss.Callback(issuedParam), oss.CallbackVar(issuedVars), oss.CallbackResult(&result)); err != nil {
		t.Fatalf("honest upload: %v", err)
	}
	got := env.app.verified()
	obj, _ := env.emu.Object(secBucket, "uploads/bob/honest.png")
	if len(got) != 1 || got[0].form().Get("object") != "uploads/bob/honest.png" || got[0].form().Get("size") != "6" ||
		got[0].form().Get("user") != "bob" || got[0].form().Get("etag") != strings.Trim(obj.ETag, `"`) {
		t.Fatalf("app received %+v", got)
	}
}

// 5 and 6. Whatever a PostObject uploader adds to the fields it was given,
// the object is stored at the issued key, with an allowed type, the
// bucket's ACL and the pinned storage class, and the app hears only
// callbacks with the issued variables.
func TestSecurityPostObjectExtraFields(t *testing.T) {
	env := newSecEnv(t, "")
	attackerCb := b64JSON(map[string]string{"callbackUrl": "http://127.0.0.1:9/cb", "callbackBody": "object=${object}"})
	extras := [][2]string{
		{"x-oss-content-type", "text/html"}, {"X-OSS-Content-Type", "text/html"}, {"Content-Type", "text/html"},
		{"content-type", "application/pdf"},
		{"x-oss-object-acl", "public-read"}, {"x-oss-object-acl", "public-read-write"}, {"X-Oss-Object-Acl", "private"},
		{"x-oss-storage-class", "IA"}, {"x-oss-storage-class", "Archive"}, {"X-OSS-STORAGE-CLASS", "ColdArchive"},
		{"callback", attackerCb}, {"x:user", "bob"}, {"X:user", "bob"}, {"x:admin", "1"},
		{"key", "index.html"}, {"key", "uploads/alice/other.html"}, {"key", "uploads/bob/x.png"}, {"KEY", "index.html"},
		{"success_action_status", "201"}, {"x-oss-forbid-overwrite", "true"},
		{"x-oss-server-side-encryption", "AES256"}, {"x-oss-meta-owner", "bob"}, {"Cache-Control", "public"},
		{"Content-Disposition", "inline"}, {"Content-Encoding", "gzip"}, {"Expires", "0"},
		{"success_action_redirect", "http://127.0.0.1:9/"}, {"x-oss-security-token", "forged"},
	}
	// The post-policy route and Uppy's params route sign the same policy;
	// each answers its own shape.
	sources := []struct{ name, path string }{
		{"post-policy", "/oss/post-policy?filename=a.png&type=image/png&size=4"},
		{"uppy params", "/oss/uppy/s3/params?filename=a.png&type=image/png&metadata%5Bname%5D=a.png"},
	}
	for _, src := range sources {
		for _, extra := range extras {
			for _, before := range []bool{true, false} {
				name := fmt.Sprintf("%s: %s=%s before=%v", src.name, extra[0], extra[1], before)
				_, p, _ := env.get(t, src.path, "alice")
				issued := p["fields"].(map[string]any)
				var fields [][2]string
				order := []string{"key", "policy", "x-oss-signature-version", "x-oss-credential", "x-oss-date", "x-oss-signature",
					"success_action_status", "Content-Type", "x-oss-content-type", "x-oss-object-acl", "x-oss-storage-class",
					"callback", "x:oss_binding", "x:user"}
				if before {
					fields = append(fields, extra)
				}
				for _, k := range order {
					if v, ok := issued[k]; ok {
						fields = append(fields, [2]string{k, v.(string)})
					}
				}
				if len(fields) != len(issued)+map[bool]int{true: 1}[before] {
					t.Fatalf("issued fields changed: %v", issued)
				}
				if !before {
					fields = append(fields, extra)
				}
				status, body := env.postForm(t, p["url"].(string), fields, "image/png", []byte("png!"))
				key := issued["key"].(string)
				obj, stored := env.emu.Object(secBucket, key)
				if stored && (obj.ContentType != "image/png" || obj.ACL != "default" || obj.StorageClass != "Standard") {
					t.Errorf("%s: stored as %s, ACL %s, class %s (%d %s)", name, obj.ContentType, obj.ACL, obj.StorageClass, status, body)
				}
				if !stored && status < 400 {
					t.Errorf("%s: %d %s but nothing stored at the issued key", name, status, body)
				}
			}
		}
	}
	for _, k := range env.emu.Keys(secBucket) {
		if !strings.HasPrefix(k, "uploads/alice/") || strings.HasSuffix(k, ".html") {
			t.Errorf("an object was stored at %q", k)
		}
	}
	for _, r := range env.app.verified() {
		if f := r.form(); f.Get("user") != "alice" || f.Get("mimeType") != "image/png" || f.Get("admin") != "" ||
			!strings.HasPrefix(f.Get("object"), "uploads/alice/") {
			t.Errorf("the app received %s", r.body)
		}
	}
	if len(env.app.verified()) == 0 {
		t.Error("no upload went through at all: the test proves nothing")
	}
	// Presigned PUT: headers the URL did not sign are refused by OSS.
	for _, extra := range [][2]string{{"x-oss-object-acl", "public-read"}, {"x-oss-storage-class", "IA"},
		{"x-oss-callback", attackerCb}, {"Content-Type", "text/html"}, {"x-oss-forbid-overwrite", "true"}} {
		_, p, _ := env.get(t, "/oss/presign?filename=a.png&type=image/png", "alice")
		req, _ := http.NewRequest("PUT", p["url"].(string), strings.NewReader("png!"))
		req.Header.Set("Content-Type", "image/png")
		req.Header.Set(extra[0], extra[1])
		resp, err := env.toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, stored := env.emu.Object(secBucket, p["key"].(string)); resp.StatusCode != 403 || stored {
			t.Errorf("presign with %s: %d, stored %v", extra[0], resp.StatusCode, stored)
		}
	}
	// Uppy's part URLs sign no header: any the uploader adds is refused,
	// and the upload gets no part.
	req, _ := http.NewRequest("POST", "http://localhost:9080/oss/uppy/s3/multipart", strings.NewReader(`{"filename":"a.png","type":"image/png"}`))
	req.Header.Set("X-User", "alice")
	resp, err := env.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ Key, UploadID string }
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || resp.StatusCode != 200 {
		t.Fatalf("uppy create: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	for _, extra := range [][2]string{{"x-oss-object-acl", "public-read"}, {"x-oss-storage-class", "IA"},
		{"x-oss-callback", attackerCb}, {"Content-Type", "text/html"}, {"x-oss-forbid-overwrite", "true"},
		{"x-oss-server-side-encryption", "AES256"}} {
		_, p, _ := env.get(t, "/oss/uppy/s3/multipart/"+url.PathEscape(up.UploadID)+"/1?key="+url.QueryEscape(up.Key), "alice")
		req, _ := http.NewRequest("PUT", p["url"].(string), strings.NewReader("part"))
		req.Header.Set(extra[0], extra[1])
		resp, err := env.toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("uppy part with %s: %d", extra[0], resp.StatusCode)
		}
	}
	var parts []map[string]any
	if status, _, body := env.get(t, "/oss/uppy/s3/multipart/"+url.PathEscape(up.UploadID)+"?key="+url.QueryEscape(up.Key), "alice"); status != 200 ||
		json.Unmarshal([]byte(body), &parts) != nil || len(parts) != 0 {
		t.Errorf("the upload got parts: %d %s", status, body)
	}
}

// 7. Values with meaning to RAM or OSS in what a request expands (prefix,
// session name, callback variable) get nothing signed. Each round leaves
// one of the three as the only expanded value, so each check is tested on
// its own.
func TestSecurityPlaceholderValues(t *testing.T) {
	env := newSecEnv(t, "")
	wild := []string{"*", "a*", "b?b", "?", "${filename}", "$", "a$b", "${x:user}", "a\tb"}
	pathy := []string{"..", "a/../b", ".", "/abs", `a\b`}
	const (
		prefixTpl  = "key_prefix uploads/{http.request.header.X-User}/"
		sessionTpl = "session_name web-{http.request.header.X-User}"
		varTpl     = "var user {http.request.header.X-User}"
	)
	static := func(config string, keep string) string {
		for _, r := range [][2]string{{prefixTpl, "key_prefix uploads/"}, {sessionTpl, "session_name web"}, {varTpl, "var user fixed"}} {
			if r[0] != keep {
				config = strings.Replace(config, r[0], r[1], 1)
			}
		}
		return config
	}
	allRoutes := []string{"/oss/post-policy?filename=a.png&type=image/png", "/oss/presign?filename=a.png&type=image/png",
		"/oss/uppy/s3/params?filename=a.png&type=image/png", "/oss/sts"}
	rounds := []struct {
		name   string
		config string
		values []string
		routes []string
	}{
		{"all expanded", env.config, append(wild, pathy...), allRoutes},
		{"prefix only", static(env.config, prefixTpl), append(wild, pathy...), allRoutes},
		{"session name only", static(env.config, sessionTpl), wild, allRoutes[3:]},
		{"callback var only", static(env.config, varTpl), wild, allRoutes},
	}
	calls := env.emu.STSCalls()
	for _, round := range rounds {
		env.tester.InitServer(round.config, "caddyfile")
		for _, user := range round.values {
			for _, route := range round.routes {
				status, out, body := env.get(t, route, user)
				if status != 403 && status != 400 {
					t.Errorf("%s: %s as %q: %d %s", round.name, route, user, status, body)
				}
				for _, k := range []string{"policy", "url", "fields", "AccessKeyId", "SecurityToken", "signature"} {
					if _, ok := out[k]; ok {
						t.Errorf("%s: %s as %q signed something: %s", round.name, route, user, body)
					}
				}
			}
		}
		// The same routes sign for a plain user.
		for _, route := range round.routes {
			if status, _, body := env.get(t, route, "carol"); status != 200 {
				t.Errorf("%s: %s as carol: %d %s", round.name, route, status, body)
			}
		}
	}
	if n := env.emu.STSCalls() - calls; n != len(rounds) {
		t.Errorf("AssumeRole was called %d times, want %d (once per round, for carol)", n, len(rounds))
	}
	if len(env.app.all()) != 0 {
		t.Error("a signing request reached the app")
	}
}
