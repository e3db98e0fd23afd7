package caddyoss

// Every Caddyfile the project ships (each ```caddyfile block of README.md,
// docs/*.md and ossemu/README.md, and Caddyfile.example) is adapted as it
// is written, then run through a real Caddy against ossemu, a stand-in
// login service and an app that records what it receives, and attacked:
// every signing route the example answers is asked without a session and
// with forged identity headers (refused, nothing signed in the answer),
// then with the session (answered), and an upload through the example's
// post-policy route must bring the app exactly one verified callback.
//
// The rule for blocks: a block is a whole example and must adapt as a
// Caddyfile with at least one oss_upload, unless it is marked as a
// fragment, by its fence (```caddyfile fragment) or by a first line that
// is a comment starting with "# fragment"; a fragment is skipped. An
// example with signing routes and no basic_auth or forward_auth must say,
// near the block, that it is not for production; it is then only adapted,
// since anyone may ask its routes by design.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// exampleEnv is the environment every example runs with: {$X} and
// {env.X} placeholders expand from it. A placeholder naming anything else
// fails the test, so an example with a new variable gets one here.
func exampleEnv(appAddr, authAddr string) map[string]string {
	return map[string]string{
		"SITE_ADDRESS":                    exSite,
		"OSS_BUCKET":                      "env-bucket",
		"OSS_REGION":                      "cn-hangzhou",
		"OSS_ACCESS_KEY_ID":               exAK,
		"OSS_ACCESS_KEY_SECRET":           exSecret,
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     exAK, // the default credential chain
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": exSecret,
		"OSS_ROLE_ARN":                    exRole,
		"AUTH_UPSTREAM":                   authAddr,
		"APP_UPSTREAM":                    appAddr,
	}
}

var exampleBuckets = []string{"env-bucket", "example-bucket", "examplebucket"}

type docBlock struct {
	file     string // relative to the repository root
	line     int    // of the opening fence (1 for Caddyfile.example)
	text     string
	fragment bool   // marked as one in its fence
	near     string // the document's text around the block
}

func (b docBlock) name() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// docCaddyfiles are the Caddyfile blocks the project ships.
func docCaddyfiles(t *testing.T) []docBlock {
	t.Helper()
	files := []string{"README.md", "ossemu/README.md"}
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		files = append(files, strings.TrimPrefix(d, "../"))
	}
	var blocks []docBlock
	for _, f := range files {
		data, err := os.ReadFile("../" + f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			fence := strings.TrimSpace(lines[i])
			if !strings.HasPrefix(fence, "```") {
				continue
			}
			info := strings.Fields(strings.ToLower(strings.TrimPrefix(fence, "```")))
			start := i
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			}
			if i == len(lines) {
				t.Fatalf("%s:%d: unclosed fence", f, start+1)
			}
			if len(info) == 0 || info[0] != "caddyfile" {
				continue
			}
			from, to := max(0, start-20), min(len(lines), i+10)
			blocks = append(blocks, docBlock{file: f, line: start + 1, fragment: slices.Contains(info[1:], "fragment"),
				text: strings.Join(lines[start+1:i], "\n") + "\n",
				near: strings.Join(lines[from:start], "\n") + "\n" + strings.Join(lines[i+1:to], "\n")})
		}
	}
	data, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	blocks = append(blocks, docBlock{file: "Caddyfile.example", line: 1, text: string(data), near: string(data)})
	return blocks
}

// caddyfileTokens are a line's tokens up to a comment.
func caddyfileTokens(line string) []string {
	f := strings.Fields(line)
	for i, tok := range f {
		if strings.HasPrefix(tok, "#") {
			return f[:i]
		}
	}
	return f
}

var exampleEnvRef = regexp.MustCompile(`\{(?:\$([A-Za-z0-9_]+)(?::[^}]*)?|env\.([A-Za-z0-9_]+))\}`)

// expandEnv expands {$X}, {$X:default} and {env.X} from env.
func expandEnv(s string, env map[string]string) string {
	return exampleEnvRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := exampleEnvRef.FindStringSubmatch(m)
		return env[sub[1]+sub[2]]
	})
}

// exampleFacts is what the rewrite learned about an example.
type exampleFacts struct {
	auth     bool // basic_auth or forward_auth covers something
	upstream bool // reverse_proxy to the app
}

// rewriteExample points an example at the test's site address, emulator,
// login service and app: the site address becomes exSite, oss_upload gets
// the emulator's endpoint and upload_url, sts its endpoint, callback its
// url on exSite and the emulator's trusted_key, reverse_proxy and
// forward_auth the app's and the login service's addresses, and basic_auth
// accounts a hash of exPassword. Everything else runs as written.
func rewriteExample(text string, emu *ossemu.Emulator, keyFile, appAddr, authAddr, hash string, env map[string]string) (string, exampleFacts, error) {
	var out strings.Builder
	var facts exampleFacts
	var stack []string
	top := func(n int) string {
		if len(stack) < n {
			return ""
		}
		return stack[len(stack)-n]
	}
	sites := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		tok := caddyfileTokens(line)
		emit := func(toks ...string) { out.WriteString(indent + strings.Join(toks, " ") + "\n") }
		if len(tok) == 0 {
			continue
		}
		if len(tok) == 1 && tok[0] == "}" {
			if len(stack) == 0 {
				return "", facts, fmt.Errorf("unbalanced }")
			}
			stack = stack[:len(stack)-1]
			emit("}")
			continue
		}
		opens := tok[len(tok)-1] == "{"
		switch {
		case len(stack) == 0:
			if !opens || tok[0] == "{" || strings.HasPrefix(tok[0], "(") {
				return "", facts, fmt.Errorf("top-level line %q is not a site block (global options and snippets are not handled here)", line)
			}
			if sites++; sites > 1 {
				return "", facts, fmt.Errorf("more than one site: extend the test to run it")
			}
			tok = []string{exSite, "{"}
		case tok[0] == "reverse_proxy" || tok[0] == "forward_auth":
			addr := appAddr
			if tok[0] == "forward_auth" {
				addr, facts.auth = authAddr, true
			} else {
				facts.upstream = true
			}
			for i := 1; i < len(tok); i++ {
				if tok[i] != "{" && !strings.HasPrefix(tok[i], "@") && !strings.HasPrefix(tok[i], "/") && tok[i] != "*" {
					tok[i] = addr
				}
			}
		case tok[0] == "basic_auth":
			facts.auth = true
		case top(1) == "basic_auth" && len(tok) == 2:
			tok[1] = hash
		case top(1) == "oss_upload" && (tok[0] == "endpoint" || tok[0] == "upload_url"):
			continue // replaced by the emulator's
		case top(1) == "oss_upload" && tok[0] == "bucket" && len(tok) == 2:
			emit(tok...)
			emit("upload_url", emu.BucketURL(expandEnv(tok[1], env)))
			continue
		case top(1) == "sts" && top(2) == "oss_upload" && tok[0] == "endpoint":
			continue
		case top(1) == "callback" && top(2) == "oss_upload" && tok[0] == "trusted_key":
			continue
		case top(1) == "callback" && top(2) == "oss_upload" && tok[0] == "url" && len(tok) == 2:
			_, rest, ok := strings.Cut(tok[1], "://")
			_, path, ok2 := strings.Cut(rest, "/")
			if !ok || !ok2 {
				return "", facts, fmt.Errorf("callback url %q: no path", tok[1])
			}
			tok[1] = exSite + "/" + path
		}
		emit(tok...)
		if opens {
			stack = append(stack, tok[0])
			switch {
			case tok[0] == "oss_upload" && len(stack) >= 2:
				emit("\tendpoint", emu.Endpoint())
			case tok[0] == "sts" && top(2) == "oss_upload":
				emit("\tendpoint", emu.STSEndpoint())
			case tok[0] == "callback" && top(2) == "oss_upload":
				emit("\ttrusted_key", keyFile)
			}
		}
	}
	if len(stack) != 0 {
		return "", facts, fmt.Errorf("unbalanced {")
	}
	return out.String(), facts, nil
}

// ossUploadHandlers are the oss_upload handlers of an adapted config.
func ossUploadHandlers(t *testing.T, cfg []byte) []Handler {
	t.Helper()
	var doc any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	var hs []Handler
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "oss_upload" {
				fields := map[string]any{}
				for k, x := range v {
					if k != "handler" {
						fields[k] = x
					}
				}
				b, _ := json.Marshal(fields)
				var h Handler
				if err := json.Unmarshal(b, &h); err != nil {
					t.Fatalf("oss_upload JSON: %v", err)
				}
				hs = append(hs, h)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return hs
}

// signingRequest is one request to a signing route, and what a signed
// answer to it carries.
type signingRequest struct {
	method, path, body, signed string
}

// signingRequests are the requests that ask h's signing routes, with
// their default paths resolved as Provision resolves them.
func signingRequests(h Handler) []signingRequest {
	var rs []signingRequest
	policy := routePath(h.PolicyPath, defaultPolicyPath, true)
	const q = "?filename=a.png&type=image/png&size=9"
	if policy != routeOff {
		rs = append(rs, signingRequest{"GET", policy + q, "", "policy"})
	}
	if p := routePath(h.PresignPath, defaultPresignPath, true); p != routeOff {
		rs = append(rs, signingRequest{"GET", p + q, "", "url"})
	}
	if p := routePath(h.STSPath, defaultSTSPath, h.STS != nil); p != routeOff {
		rs = append(rs, signingRequest{"GET", p, "", "AccessKeyId"})
	}
	if p := routePath(h.UppyPath, defaultUppyPath, policy != routeOff); p != routeOff {
		prefix := strings.TrimSuffix(p, "/") + "/s3/"
		rs = append(rs,
			signingRequest{"GET", prefix + "params?filename=a.png&type=image/png", "", "policy"},
			signingRequest{"POST", prefix + "multipart", `{"filename":"a.png","type":"image/png","metadata":{}}`, "uploadId"})
	}
	return rs
}

// defaultSigningRequests ask every signing route at its default path:
// sent to every example, so that a route an example does not configure is
// seen not to answer either.
var defaultSigningRequests = signingRequests(Handler{STS: &STSConfig{}})

// leakedSigning names what in an answer looks signed, or "".
func leakedSigning(resp *http.Response, body string) string {
	all := strings.ToLower(body)
	for name, vs := range resp.Header {
		all += "\n" + strings.ToLower(name) + ": " + strings.ToLower(strings.Join(vs, ","))
	}
	for _, w := range []string{"policy", "signature", "accesskeyid", "securitytoken", "uploadid", "x-oss-credential"} {
		if strings.Contains(all, w) {
			return w
		}
	}
	return ""
}

// exampleLogin is the login service forward_auth asks: 401 unless the
// request carries the session cookie, then 200 with Remote-User.
func exampleLogin(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("session"); err == nil && c.Value == exSession {
			w.Header().Set("Remote-User", exUser)
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "log in first", http.StatusUnauthorized)
	}))
	t.Cleanup(s.Close)
	return s
}

var forgedIdentities = [][2]string{
	{"Remote-User", exUser}, {"X-User", exUser}, {"X-Forwarded-User", exUser}, {"X-Remote-User", exUser},
}

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
		t.Run(b.name(), func(t *testing.T) { runExample(t, b, exHash) })
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
				URL    string            `json:"url"`
				Fields map[string]string `json:"fields"`
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
		t.Logf("%s: one verified callback reached the app (verify_only %v)", b.name(), h.Callback.VerifyOnly)
	}
}
