package caddyoss

// Every Caddyfile the project ships (each ```caddyfile block of README.md,
// docs/*.md and ossemu/README.md, and Caddyfile.example) is adapted as it
// is written, then run through a real Caddy against ossemu, a stand-in
// login service and an app that records what it receives, and attacked:
// every signing route the example answers is asked without a session and
// with forged identity headers (refused, nothing signed in the answer),
// then with the session (answered), and an upload through the example's
// post-policy route must bring the app exactly one verified callback (with
// a confirm route, the upload is confirmed too, and still reaches the app
// once). An example with a quota block must then show the remaining
// headers and, once its quota is used up, the 429 (examples_quota_test.go).
//
// The rule for blocks: a block is a whole example and must adapt as a
// Caddyfile with at least one oss_upload, unless it is marked as a
// fragment, by its fence (```caddyfile fragment) or by a first line that
// is a comment starting with "# fragment"; a fragment is not run (the test logs it).
// A block whose fence names a module the project does not depend on
// (```caddyfile needs=<module path>) runs without that module's
// directives unless the test binary links it (examples_external_test.go). An
// example with signing routes and no basic_auth or forward_auth must say,
// near the block, that it is not for production; it is then only adapted,
// since anyone may ask its routes by design.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

const (
	exSite     = "http://localhost:9080"
	exAK       = "example-ak"
	exSecret   = "example-secret"
	exRole     = "acs:ram::1234567890123456:role/example-uploader"
	exUser     = "alice"
	exPassword = "correct horse battery staple"
	exSession  = "session-3f6c2a9e1d"
	// exHash is a bcrypt hash of exPassword (cost 4), for basic_auth.
	exHash = "$2a$04$JOfQldknYmOcn3sSvxXyIulpJ0EehxqHaWPfPIETlrDYiMHIL31r2"
)

func TestExamples(t *testing.T) {
	blocks := docCaddyfiles(t)
	if len(blocks) < 2 {
		t.Fatalf("found %d Caddyfile blocks", len(blocks))
	}
	for _, b := range blocks {
		// A fragment is no whole example: there is nothing to run.
		if first := strings.TrimSpace(strings.SplitN(strings.TrimSpace(b.text), "\n", 2)[0]); b.fragment || strings.HasPrefix(first, "# fragment") {
			t.Logf("%s: marked as a fragment, not run", b.name())
			continue
		}
		t.Run(b.name(), func(t *testing.T) {
			text, removed, err := withoutExternal(b)
			if err != nil {
				t.Fatalf("%s: %v", b.name(), err)
			}
			if len(removed) > 0 {
				t.Logf("%s needs %s, which this test binary does not link: removed %s; the rest runs",
					b.name(), strings.Join(b.needs, ", "), strings.Join(removed, ", "))
				b.text = text
			}
			runExample(t, b, exHash)
		})
	}
}

func runExample(t *testing.T, b docBlock, hash string) {
	emu, keyFile := startEmu(t, ossemu.Options{
		Buckets:    exampleBuckets,
		AccessKeys: map[string]string{exAK: exSecret},
		Roles:      []ossemu.Role{{ARN: exRole}},
	})
	app := newRecordingApp(t)
	login := exampleLogin(t)
	appAddr, authAddr := strings.TrimPrefix(app.URL, "http://"), strings.TrimPrefix(login.URL, "http://")
	env := exampleEnv(appAddr, authAddr)
	for _, m := range exampleEnvRef.FindAllStringSubmatch(b.text, -1) {
		if _, ok := env[m[1]+m[2]]; !ok {
			t.Fatalf("%s: placeholder %s names a variable the test does not set: add it to exampleEnv", b.name(), m[0])
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}

	// As written: a whole Caddyfile with an oss_upload.
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(b.text), map[string]any{"filename": b.file})
	if err != nil {
		t.Fatalf("%s does not adapt as a whole Caddyfile (start it with \"# fragment\" if it is not one): %v", b.name(), err)
	}
	handlers := ossUploadHandlers(t, adapted)
	if len(handlers) == 0 {
		t.Fatalf("%s has no oss_upload (start it with \"# fragment\" if it is not a whole example)", b.name())
	}

	config, facts, err := rewriteExample(b.text, emu, keyFile, appAddr, authAddr, hash, env)
	if err != nil {
		t.Fatalf("%s: %v", b.name(), err)
	}
	var routes []signingRequest
	for _, h := range handlers {
		routes = append(routes, signingRequests(h)...)
	}
	if len(routes) > 0 && !facts.auth {
		if !strings.Contains(strings.ToLower(b.near), "not for production") {
			t.Fatalf("%s answers signing routes (%s, ...) to anyone: put them behind basic_auth or forward_auth, or say next to it that it is not for production", b.name(), routes[0].path)
		}
		t.Logf("%s: adapted; no auth layer, and the text next to it says it is not for production: not run", b.name())
		return
	}

	tester := newTester(t)
	tester.InitServer(testGlobal(t)+config, "caddyfile")
	if t.Failed() {
		t.Fatalf("%s rewritten for the test:\n%s", b.name(), config)
	}
	getWhenReady(t, tester.Client, exSite+"/").Body.Close()

	do := func(r signingRequest, header map[string]string, session bool) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		req, _ := http.NewRequest(r.method, exSite+r.path, body)
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if session {
			req.SetBasicAuth(exUser, exPassword)
			req.AddCookie(&http.Cookie{Name: "session", Value: exSession})
		}
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, string(out)
	}

	// Without a session, and with forged identities: refused where the
	// example answers the route, and never signed.
	attacks := []map[string]string{nil}
	all := map[string]string{}
	for _, h := range forgedIdentities {
		attacks = append(attacks, map[string]string{h[0]: h[1]})
		all[h[0]] = h[1]
	}
	attacks = append(attacks, all)
	configured := map[string]bool{}
	for _, r := range routes {
		configured[r.method+" "+r.path] = true
	}
	asked := append([]signingRequest(nil), routes...)
	for _, r := range defaultSigningRequests {
		if !configured[r.method+" "+r.path] {
			asked = append(asked, r)
		}
	}
	for _, r := range asked {
		for _, hdr := range attacks {
			resp, body := do(r, hdr, false)
			if w := leakedSigning(resp, body); w != "" {
				t.Errorf("%s: %s %s with %v: the answer carries %q: %d %.300s", b.name(), r.method, r.path, hdr, w, resp.StatusCode, body)
			}
			if configured[r.method+" "+r.path] && facts.auth && resp.StatusCode != 401 && resp.StatusCode != 403 {
				t.Errorf("%s: %s %s with %v: %d, want 401 or 403", b.name(), r.method, r.path, hdr, resp.StatusCode)
			}
		}
	}

	t.Logf("%s: %d signing requests the example answers, %d requests without a session or with forged identities, auth layer %v",
		b.name(), len(routes), len(attacks)*len(asked), facts.auth)

	// With the session: every route the example answers signs.
	if facts.auth {
		for _, r := range routes {
			resp, body := do(r, nil, true)
			if resp.StatusCode != 200 || !strings.Contains(body, r.signed) {
				t.Errorf("%s: %s %s with the session: %d %.300s, want 200 with %s", b.name(), r.method, r.path, resp.StatusCode, body, r.signed)
			}
		}
	}

	// A genuine callback reaches the app once, verified.
	for _, h := range handlers {
		if h.Callback == nil || !facts.upstream {
			continue
		}
		toOSS := loopbackClient(emu.Addr())
		before := len(app.snapshot())
		var status int
		var answer string
		if policy := routePath(h.PolicyPath, defaultPolicyPath, true); !h.Callback.VerifyOnly && policy != routeOff {
			resp, body := do(signingRequest{"GET", policy + "?filename=a.png&type=image/png&size=9", "", "policy"}, nil, true)
			var p struct {
				URL     string            `json:"url"`
				Key     string            `json:"key"`
				Fields  map[string]string `json:"fields"`
				Confirm *confirmInfo      `json:"confirm"`
			}
			if err := json.Unmarshal([]byte(body), &p); err != nil || resp.StatusCode != 200 || p.URL == "" {
				t.Fatalf("%s: post-policy with the session: %d %.300s", b.name(), resp.StatusCode, body)
			}
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			for k, v := range p.Fields {
				_ = mw.WriteField(k, v)
			}
			fw, _ := mw.CreateFormFile("file", "a.png")
			_, _ = fw.Write([]byte("png bytes"))
			_ = mw.Close()
			up, err := toOSS.Post(p.URL, mw.FormDataContentType(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(up.Body)
			up.Body.Close()
			status, answer = up.StatusCode, string(out)
			if h.confirmOn() && status == 200 {
				// The uploader confirms: the app's answer, or (after a
				// callback) a duplicate.
				if p.Confirm == nil || p.Confirm.URL != h.ConfirmPath {
					t.Fatalf("%s: the post-policy answer has no confirm object: %.300s", b.name(), body)
				}
				c, _ := json.Marshal(map[string]string{"key": p.Key, "token": p.Confirm.Token})
				resp, cbody := do(signingRequest{"POST", p.Confirm.URL, string(c), ""}, nil, true)
				if resp.StatusCode != 200 {
					t.Fatalf("%s: the confirm got %d %.300s", b.name(), resp.StatusCode, cbody)
				}
				if h.Callback.ConfirmOnly {
					answer = cbody
				}
			}
		} else if h.Callback.VerifyOnly {
			// Nothing here signs uploads: another system's upload, with a
			// callback to this site, sent by OSS.
			client, err := oss.New(emu.Endpoint(), exAK, exSecret, oss.HTTPClient(toOSS))
			if err != nil {
				t.Fatal(err)
			}
			bucket, err := client.Bucket(h.Bucket)
			if err != nil {
				t.Fatal(err)
			}
			cbPath := routePath(h.CallbackPath, defaultCallbackPath, true)
			param, _ := json.Marshal(map[string]string{
				"callbackUrl":      exSite + cbPath,
				"callbackBody":     "bucket=${bucket}&object=${object}&etag=${etag}&size=${size}&mimeType=${mimeType}",
				"callbackBodyType": "application/x-www-form-urlencoded",
			})
			var result []byte
			err = bucket.PutObject("elsewhere/a.png", strings.NewReader("png bytes"),
				oss.Callback(base64.StdEncoding.EncodeToString(param)), oss.CallbackResult(&result))
			if err != nil {
				t.Fatalf("%s: PutObject with a callback: %v", b.name(), err)
			}
			status, answer = 200, string(result)
		} else {
			continue
		}
		if status != 200 {
			t.Fatalf("%s: the upload got %d %.300s, want 200 with the app's answer", b.name(), status, answer)
		}
		calls := app.snapshot()[before:]
		if len(calls) != 1 || calls[0].verified != "true" {
			t.Fatalf("%s: the app received %+v, want one request with X-Oss-Callback-Verified: true", b.name(), calls)
		}
		t.Logf("%s: one verified upload reached the app (verify_only %v, confirmed %v)", b.name(), h.Callback.VerifyOnly, h.confirmOn())
	}

	// With a quota: the remaining headers, then the 429 (last: it uses
	// the quota up).
	checkExampleQuota(t, b, handlers, func(r signingRequest) (*http.Response, string) { return do(r, nil, true) })
}
