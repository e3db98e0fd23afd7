package caddyoss

// Forged, foreign, replayed and rewritten callbacks never reach the app as
// verified (docs/security.md, promises 1 to 4).

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/internal/callback/callbacktest"
)

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
