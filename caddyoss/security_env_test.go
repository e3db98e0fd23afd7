package caddyoss

// The environment of the adversarial tests of docs/security.md's promises:
// a running Caddy, ossemu and an upstream app that records everything it
// receives. Each test generates its variants and then asserts what the app
// saw.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
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
	env.config = appSite(t, emu, secBucket, "sec-ak", "sec-secret", `
		key_prefix uploads/{http.request.header.X-User}/
		allow_types image/* application/pdf
		max_size 1KB
		callback_path `+secCbPath+`
		sts {
			role_arn `+secRole+`
			endpoint `+emu.STSEndpoint()+`
			session_name web-{http.request.header.X-User}
			duration 15m
		}
		callback {
			url http://localhost:9080`+secCbPath+`
			var user {http.request.header.X-User}
			trusted_key `+keyFile+`
		}
		`+extra, strings.TrimPrefix(env.app.URL, "http://"))
	env.tester.InitServer(env.config, "caddyfile")
	return env
}

// ask sends req to Caddy as user (as no one when "") and returns the
// answer's status and body.
func (e *secEnv) ask(t *testing.T, req *http.Request, user string) (int, []byte) {
	t.Helper()
	if user != "" {
		req.Header.Set("X-User", user)
	}
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// get asks a signing route as a user.
func (e *secEnv) get(t *testing.T, path, user string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://localhost:9080"+path, nil)
	status, b := e.ask(t, req, user)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return status, out, string(b)
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
