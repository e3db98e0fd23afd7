package caddyoss

// Attacks on the callback promise: a request marked verified is a genuine
// callback for an upload this handler authorized, carrying what it issued
// plus OSS's facts, once. Each test sends generated variants of one genuine
// callback (captured from ossemu) and asserts what the recording app saw.

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

// genuineUpload uploads as user through a post-policy and returns the
// callback ossemu sent for it.
func (e *secEnv) genuineUpload(t *testing.T, user string) ossemu.CallbackRecord {
	t.Helper()
	_, p, _ := e.get(t, "/oss/post-policy?filename=a.png&type=image/png&size=4", user)
	var fields [][2]string
	for k, v := range p["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	if status, body := e.postForm(t, p["url"].(string), fields, "image/png", []byte("png!")); status != 200 {
		t.Fatalf("upload: %d %s", status, body)
	}
	sent := e.emu.Callbacks()
	return sent[len(sent)-1]
}

// resend posts a copy of cb to target (path and query) with its headers,
// changed by mutate, and returns the status and body.
func resend(t *testing.T, cb ossemu.CallbackRecord, target, body string, mutate func(http.Header)) (int, string) {
	t.Helper()
	hdr := [][2]string{}
	h := cb.Header.Clone()
	if mutate != nil {
		mutate(h)
	}
	h.Del("Content-Length")
	h.Del("Host")
	for k, vs := range h {
		for _, v := range vs {
			hdr = append(hdr, [2]string{k, v})
		}
	}
	status := rawRequest(t, "POST", target, hdr, body)
	return status, ""
}

// 1, 2, 3. Copies of one genuine callback, relayed with other queries and
// headers, reach the app once, as the handler
// rebuilt it: the configured path without query, the signed body, and only
// the documented headers, with one Idempotency-Key.
func TestCallbackIntegrityCopies(t *testing.T) {
	env := newSecEnv(t, "")
	cb := env.genuineUpload(t, "bob")
	u, _ := url.Parse(cb.URL)
	delivered := env.app.verified()
	if len(delivered) != 1 {
		t.Fatalf("the app received %d callbacks", len(delivered))
	}
	first := delivered[0]
	key := first.header.Get("Idempotency-Key")
	if first.uri != secCbPath || first.method != "POST" || len(key) != 64 || first.body != cb.Body {
		t.Fatalf("the app received %s %s key %q", first.method, first.uri, key)
	}
	for name := range first.header {
		switch http.CanonicalHeaderKey(name) {
		case "Content-Type", "Content-Length", "Idempotency-Key", verifiedHeader, "X-Oss-Bucket",
			// added by reverse_proxy itself
			"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via", "Accept-Encoding", "User-Agent":
		default:
			t.Errorf("the app received the header %s: %q", name, first.header.Get(name))
		}
	}
	// The uploader's or a relay's query: refused, as OSS signed the query
	// too, or (if unsigned) refused by the signature.
	for _, q := range []string{"?user=alice", "?user=alice&admin=1", "?", "?n=1", "?user=bob", ";user=alice", "?%75ser=alice"} {
		if status, _ := resend(t, cb, u.Path+q, cb.Body, nil); status < 400 || status > 499 {
			t.Errorf("query %q: status %d", q, status)
		}
	}
	// Relayed headers: the copy is a duplicate, and nothing reaches the app.
	relayed := []func(http.Header){
		nil,
		func(h http.Header) { h.Set("Cookie", "session=admin") },
		func(h http.Header) { h.Set("X-Http-Method-Override", "DELETE") },
		func(h http.Header) { h.Set("X-Real-Ip", "10.0.0.1"); h.Set("X-Forwarded-For", "10.0.0.1") },
		func(h http.Header) { h.Set("X-Oss-Owner", "evil"); h.Set("X-Oss-Requester", "evil") },
		func(h http.Header) { h.Set("Authorization-Extra", "x"); h.Set("X-Oss-Request-Id", "another") },
	}
	for i, m := range relayed {
		if status, _ := resend(t, cb, u.RequestURI(), cb.Body, m); status != 200 {
			t.Errorf("relay %d: status %d", i, status)
		}
	}
	if got := env.app.verified(); len(got) != 1 {
		t.Fatalf("the app received the upload %d times", len(got))
	}
	// Another upload of another user: another Idempotency-Key.
	env.genuineUpload(t, "carol")
	got := env.app.verified()
	if len(got) != 2 || got[1].header.Get("Idempotency-Key") == key {
		t.Fatalf("second upload: %d deliveries", len(got))
	}
}

// 4. A binding issued by one site is refused by another on the same Caddy,
// even with the same bucket and credentials.
func TestCallbackIntegrityOtherSite(t *testing.T) {
	env := newSecEnv(t, "")
	// A second site on the same Caddy and storage: staff uploads.
	staff := strings.Replace(env.config, "http://localhost:9080 {", "http://localhost:9081 {", 1)
	staff = strings.Replace(staff, "key_prefix uploads/{http.request.header.X-User}/", "key_prefix staff/{http.request.header.X-User}/", 1)
	staff = strings.Replace(staff, "url http://localhost:9080"+secCbPath, "url http://localhost:9081"+secCbPath, 1)
	staff = staff[strings.Index(staff, "http://localhost:9081 {"):]
	env.tester.InitServer(env.config+"\n"+staff, "caddyfile")
	cb := env.genuineUpload(t, "bob")
	before := len(env.app.verified())
	u, _ := url.Parse(cb.URL)
	hdr := [][2]string{}
	for k, vs := range cb.Header {
		if k != "Content-Length" && k != "Host" {
			hdr = append(hdr, [2]string{k, vs[0]})
		}
	}
	status := rawRequestTo(t, "localhost:9081", "POST", u.RequestURI(), hdr, cb.Body)
	if status != http.StatusForbidden {
		t.Errorf("the staff site answered %d to the public site's callback", status)
	}
	if got := env.app.verified(); len(got) != before {
		t.Fatalf("the staff site forwarded another site's callback")
	}
}

// 5. The app's refusal stays a refusal: copies get the app's answer again
// and never reach it; the app saw the upload once.
func TestCallbackIntegrityRefusal(t *testing.T) {
	app := newFlakyApp(t)
	env := newSecEnv(t, "")
	env.tester.InitServer(strings.Replace(env.config, strings.TrimPrefix(env.app.URL, "http://"), app.addr, 1), "caddyfile")
	app.setMode("4xx")
	_, p, _ := env.get(t, "/oss/post-policy?filename=a.png&type=image/png&size=4", "bob")
	var fields [][2]string
	for k, v := range p["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	if status, _ := env.postForm(t, p["url"].(string), fields, "image/png", []byte("png!")); status != 203 {
		t.Fatalf("a refused upload answered %d, want 203 (CallbackFailed)", status)
	}
	sent := env.emu.Callbacks()
	cb := sent[len(sent)-1]
	u, _ := url.Parse(cb.URL)
	app.setMode("up")
	for i := range 3 {
		if status, _ := resend(t, cb, u.RequestURI(), cb.Body, nil); status != http.StatusConflict {
			t.Errorf("copy %d of a refused callback: %d, want the app's 409", i, status)
		}
	}
	time.Sleep(1500 * time.Millisecond) // no retry arrives
	if n := len(app.requests()); n != 1 {
		t.Fatalf("the app received the refused upload %d times", n)
	}
}

// 9. A key_prefix whose placeholder does not end a path segment is a
// config error naming the fix; a placeholder value with '/' is refused.
func TestCallbackIntegrityPrefixSegments(t *testing.T) {
	for _, prefix := range []string{"uploads/{http.request.header.X-User}", "u/{http.request.header.X-User}-x/"} {
		h := &Handler{Bucket: "b-bucket", Region: "cn-hangzhou", AccessKeyID: "a", AccessKeySecret: "s", KeyPrefix: prefix}
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "followed by '/'") {
			t.Errorf("%q: %v", prefix, err)
		}
	}
	env := newSecEnv(t, "")
	for _, user := range []string{"al/ice", "alice/", "/alice", "a/b/c"} {
		for _, route := range []string{"/oss/post-policy?filename=a.png&type=image/png", "/oss/presign?filename=a.png&type=image/png", "/oss/sts"} {
			if status, _, _ := env.get(t, route, user); status != http.StatusForbidden {
				t.Errorf("user %q on %s: %d", user, route, status)
			}
		}
	}
}

// 13. A form body with a raw ';' is refused wherever the ';' stands, even
// genuinely signed: parsers that split fields on it would read a value
// that was never checked. Encoded, or in a JSON body, it is a value.
func TestCallbackIntegritySemicolons(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	h := callbackHandler(t, writeKeyPEM(t, key))
	keyURL := base64.StdEncoding.EncodeToString([]byte("http://127.0.0.1:9/key.pem"))
	send := func(i int, body string) (int, *recordedCall) {
		uri := fmt.Sprintf("/index.php?n=%d", i)
		r := httptest.NewRequest("POST", uri, strings.NewReader(body))
		r.Header.Set("Authorization", signCallback(t, key, uri, body))
		r.Header.Set("X-Oss-Pub-Key-Url", keyURL)
		rec, rc := runCallback(t, h, withReplacer(r))
		return rec.Code, rc
	}
	base := "bucket=yonghu-test&object=u%2Fa.png&etag=E&mimeType=image%2Fpng&user=bob"
	n := 0
	for i := 0; i <= len(base); i++ {
		for _, ins := range []string{";", ";user=alice", ";;"} {
			body := base[:i] + ins + base[i:]
			n++
			if status, rc := send(n, body); status != http.StatusForbidden || rc.called {
				t.Errorf("%q: status %d, app called %v", body, status, rc.called)
			}
		}
	}
	for i, body := range []string{
		strings.Replace(base, "mimeType=image%2Fpng", "mimeType=image%2Fpng%3Buser%3Dalice", 1),
		`{"bucket":"yonghu-test","object":"u/b.png","etag":"E","mimeType":"image/png;user=alice"}`,
	} {
		if status, rc := send(1000+i, body); status != http.StatusOK || !rc.called {
			t.Errorf("%q: status %d, app called %v", body, status, rc.called)
		}
	}
}

// 1, 3. An STS uploader writes the callback parameter itself, so OSS signs
// whatever query and binding spelling it chooses. Every choice but the
// issued one is refused; the same upload sent again is a duplicate; the app
// hears of the upload once, with one Idempotency-Key.
func TestCallbackIntegritySTSChoices(t *testing.T) {
	env := newSecEnv(t, "")
	b, issuedParam, issuedVars := env.stsUploader(t, "bob")
	var param, vars map[string]string
	raw, _ := base64.StdEncoding.DecodeString(issuedParam)
	_ = json.Unmarshal(raw, &param)
	raw, _ = base64.StdEncoding.DecodeString(issuedVars)
	_ = json.Unmarshal(raw, &vars)
	put := func(p, v string) error {
		return b.PutObject("uploads/bob/same.png", strings.NewReader("same bytes"), oss.ContentType("image/png"),
			oss.Callback(p), oss.CallbackVar(v))
	}
	if err := put(issuedParam, issuedVars); err != nil {
		t.Fatalf("honest upload: %v", err)
	}
	var variants []struct{ name, param, vars string }
	for _, q := range []string{"?user=alice", "?user=alice&admin=1", "?n=1", "?n=2", "?", "?user=bob", "/", "/x/..", ".json", "%2ejson", "%3Bx"} {
		p := map[string]string{}
		for k, v := range param {
			p[k] = v
		}
		p["callbackUrl"] += q
		variants = append(variants, struct{ name, param, vars string }{"url " + q, b64JSON(p), issuedVars})
	}
	parts := strings.Split(vars["x:oss_binding"], ".")
	respell := func(i int, v string) string {
		q := append([]string(nil), parts...)
		q[i] = v
		return strings.Join(q, ".")
	}
	for _, spelled := range []string{
		respell(2, "0"+parts[2]), respell(2, "+"+parts[2]), respell(2, parts[2]+" "),
		respell(3, parts[3]+"="), respell(3, parts[3]+"\n"),
		respell(4, parts[4]+"="), respell(4, parts[4][:5]+"\n"+parts[4][5:]),
		respell(4, strings.NewReplacer("-", "+", "_", "/").Replace(parts[4])),
		"1" + vars["x:oss_binding"][1:],
	} {
		if spelled == vars["x:oss_binding"] {
			continue // the MAC has no '-' or '_' to respell
		}
		v := map[string]string{}
		for k, x := range vars {
			v[k] = x
		}
		v["x:oss_binding"] = spelled
		variants = append(variants, struct{ name, param, vars string }{"binding " + spelled, issuedParam, b64JSON(v)})
	}
	for _, v := range variants {
		var se oss.ServiceError
		if err := put(v.param, v.vars); !errors.As(err, &se) || se.StatusCode != 203 {
			t.Errorf("%s: %v, want 203 CallbackFailed", v.name, err)
		}
	}
	// The issued parameter again: the same upload, answered as a duplicate.
	if err := put(issuedParam, issuedVars); err != nil {
		t.Errorf("the same upload again: %v", err)
	}
	got := env.app.verified()
	if len(got) != 1 {
		t.Fatalf("the app received the upload %d times", len(got))
	}
	if got[0].uri != secCbPath || got[0].form().Get("user") != "bob" {
		t.Errorf("the app received %s %s", got[0].uri, got[0].body)
	}
}

// An STS uploader who writes the etag into its callback body in another
// case (OSS confirms it without case) sends a copy of the same upload:
// one event, one delivery.
func TestCallbackIntegrityETagSpelling(t *testing.T) {
	env := newSecEnv(t, "")
	b, issuedParam, issuedVars := env.stsUploader(t, "bob")
	var param map[string]string
	raw, _ := base64.StdEncoding.DecodeString(issuedParam)
	_ = json.Unmarshal(raw, &param)
	put := func(p string) error {
		return b.PutObject("uploads/bob/same.png", strings.NewReader("same bytes"), oss.ContentType("image/png"),
			oss.Callback(p), oss.CallbackVar(issuedVars))
	}
	if err := put(issuedParam); err != nil {
		t.Fatalf("honest upload: %v", err)
	}
	obj, _ := env.emu.Object(secBucket, "uploads/bob/same.png")
	etag := strings.Trim(obj.ETag, `"`)
	for _, spelled := range []string{strings.ToLower(etag), strings.ToLower(etag[:8]) + etag[8:]} {
		p := map[string]string{}
		for k, v := range param {
			p[k] = v
		}
		p["callbackBody"] = strings.Replace(p["callbackBody"], "${etag}", spelled, 1)
		if err := put(b64JSON(p)); err != nil {
			t.Errorf("etag %s: %v, want the duplicate's answer", spelled, err)
		}
	}
	if got := env.app.verified(); len(got) != 1 {
		t.Fatalf("the app received the upload %d times", len(got))
	}
}
