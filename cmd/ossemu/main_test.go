package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// What the Caddyfile below uses: oss_upload and reverse_proxy.
	_ "github.com/caddy-oss/caddy-oss/caddyoss"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// syncBuffer is a buffer the command writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started runs the command with args until the test ends, and returns
// its JSON line (once printed) and what it printed to stderr by then.
func started(t *testing.T, args ...string) (info map[string]string, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, errOut syncBuffer
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = run(ctx, args, strings.NewReader(""), &stdout, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if runErr != nil {
			t.Errorf("ossemu: %v", runErr)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "\n") {
		select {
		case <-done:
			t.Fatalf("ossemu returned before its JSON line\n%s", errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("ossemu printed no JSON line")
		}
		time.Sleep(10 * time.Millisecond)
	}
	line, _, _ := strings.Cut(stdout.String(), "\n")
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("first line %q: %v", line, err)
	}
	return info, errOut.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// appCall is one callback the recording app received.
type appCall struct {
	verified string
	form     url.Values
}

// The printed oss_upload block, put into a site of an otherwise plain
// Caddyfile, works as it is: the site signs a PostObject upload, ossemu
// stores it and calls back, Caddy verifies the callback with the key file
// the block names and hands it to the app, whose answer the uploader gets.
// The STS route gets credentials for the role. The -caddyfile file holds
// the same block, and a site importing it adapts to the same config.
func TestPrintCaddyfile(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir()) // Caddy's instance id
	var mu sync.Mutex
	var calls []appCall
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		calls = append(calls, appCall{r.Header.Get("X-Oss-Callback-Verified"), r.PostForm})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"saved":true}`)
	}))
	defer app.Close()

	site := freeAddr(t)
	_, sitePort, _ := net.SplitHostPort(site)
	stateDir := filepath.Join(t.TempDir(), "state")
	snippetFile := filepath.Join(t.TempDir(), "ossemu.caddy")
	const role = "acs:ram::1234567890123456:role/uploader"
	info, snippet := started(t, "-bucket", "my-bucket", "-key", "ak:sk secret", "-role", role,
		"-print-caddyfile", "-caddyfile", snippetFile, "-state-dir", stateDir,
		"-callback-url", "http://127.0.0.1:"+sitePort+"/oss/callback")

	_, port, _ := net.SplitHostPort(info["addr"])
	keyFile := filepath.Join(stateDir, callbackKeyFile)
	for _, want := range []string{"oss_upload {\n", "\tendpoint http://127.0.0.1:" + port + "\n",
		"\tupload_url http://my-bucket.localhost:" + port + "\n", "\taccess_key_id ak\n", "\taccess_key_secret \"sk secret\"\n",
		"\t\tendpoint http://127.0.0.1:" + port + "\n", "\t\trole_arn " + role + "\n", "\t\ttrusted_key " + keyFile + "\n"} {
		if !strings.Contains(snippet, want) {
			t.Errorf("printed block lacks %q:\n%s", want, snippet)
		}
	}
	if pem, err := os.ReadFile(keyFile); err != nil || string(pem) != info["callbackKeyPEM"] {
		t.Errorf("key file %s: %v\n%s", keyFile, err, pem)
	}
	if b, err := os.ReadFile(snippetFile); err != nil || string(b) != snippet {
		t.Errorf("-caddyfile %s: %v\n%s", snippetFile, err, b)
	}

	global := "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n\tstorage file_system " + t.TempDir() + "\n}\n"
	siteBlock := func(ossUpload string) string {
		return global + "http://:" + sitePort + " {\n\tbind 127.0.0.1\n" + ossUpload + "\n\treverse_proxy " +
			strings.TrimPrefix(app.URL, "http://") + "\n}\n"
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(siteBlock(snippet)), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("%v\n%s", err, siteBlock(snippet))
	}
	imported, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(siteBlock("\timport "+snippetFile)), map[string]any{"filename": "Caddyfile"})
	if err != nil || !bytes.Equal(imported, cfg) {
		t.Errorf("a site importing %s: %v\n%s\nwant\n%s", snippetFile, err, imported, cfg)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = caddy.Stop() }()

	// <bucket>.localhost is loopback; Go does not resolve it itself.
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, p, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", p))
		},
	}}
	getJSON := func(path string, v any) {
		t.Helper()
		resp, err := client.Get("http://" + site + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, v); resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}

	var policy struct {
		URL    string
		Fields map[string]string
	}
	getJSON("/oss/post-policy?filename=note.txt&type=text/plain&size=11", &policy)
	if !strings.HasPrefix(policy.URL, "http://my-bucket.localhost:"+port) {
		t.Errorf("upload URL %s", policy.URL)
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	for k, v := range policy.Fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "note.txt")
	_, _ = io.WriteString(fw, "hello world")
	_ = mw.Close()
	resp, err := client.Post(policy.URL, mw.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(answer) != `{"saved":true}` {
		t.Fatalf("PostObject: %d %s", resp.StatusCode, answer)
	}
	mu.Lock()
	got := append([]appCall(nil), calls...)
	mu.Unlock()
	if len(got) != 1 || got[0].verified != "true" || got[0].form.Get("bucket") != "my-bucket" ||
		got[0].form.Get("object") != policy.Fields["key"] || got[0].form.Get("size") != "11" {
		t.Errorf("the app received %+v", got)
	}

	var creds struct{ AccessKeyId, SecurityToken string }
	getJSON("/oss/sts", &creds)
	if creds.AccessKeyId == "" || creds.SecurityToken == "" {
		t.Errorf("STS route: %+v", creds)
	}
}

// Without -state-dir the key goes to a temporary directory, removed when
// the command stops; the JSON line is unchanged, and without a key or
// bucket the block cannot be printed.
func TestPrintCaddyfileTempKey(t *testing.T) {
	var keyFile string
	t.Run("run", func(t *testing.T) {
		info, snippet := started(t, "-bucket", "bucket", "-key", "ak:sk", "-print-caddyfile")
		for _, k := range []string{"endpoint", "stsEndpoint", "addr", "region", "callbackKeyPEM", "callbackKeyPath"} {
			if info[k] == "" {
				t.Errorf("JSON line lacks %s: %v", k, info)
			}
		}
		if strings.Contains(snippet, "sts {") || !strings.Contains(snippet, "\t\turl "+defaultCallbackURL+"\n") {
			t.Errorf("without -role and -callback-url:\n%s", snippet)
		}
		for _, line := range strings.Split(snippet, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "trusted_key" {
				keyFile = f[1]
			}
		}
		if _, err := os.Stat(keyFile); err != nil {
			t.Fatalf("trusted_key %q: %v\n%s", keyFile, err, snippet)
		}
	})
	if _, err := os.Stat(filepath.Dir(keyFile)); !os.IsNotExist(err) {
		t.Errorf("%s after the command stopped: %v", filepath.Dir(keyFile), err)
	}

	for _, args := range [][]string{{"-print-caddyfile", "-key", "ak:sk"}, {"-caddyfile", "x.caddy", "-bucket", "bucket"}} {
		err := run(context.Background(), args, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "need a -bucket and a -key") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
