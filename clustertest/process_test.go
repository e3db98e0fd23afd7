package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/redistest"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

// caddyBin is Caddy with oss_upload and caddy-storage-redis
// (clustertest/caddy), built once for the process tests.
var caddyBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "clustertest-caddy")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./caddy")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building clustertest/caddy: %v\n%s", err, out)
	}
	return bin, nil
})

// redisModule is the Caddyfile block of caddy-storage-redis for the
// redis-server at addr.
func redisModule(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "redis {\n\thost " + host + "\n\tport " + port + "\n}"
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// recorder is the app: while down it refuses connections; up, it records
// each verified callback by its Idempotency-Key.
type recorder struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
	keys map[string]int
	// handle, if set, is also given each request and its body.
	handle func(req *http.Request, body []byte)
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), keys: map[string]int{}}
	t.Cleanup(r.down)
	return r
}

func (r *recorder) up(t *testing.T) {
	r.mu.Lock()
	running := r.srv != nil
	r.mu.Unlock()
	if running {
		return
	}
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.handle != nil {
			r.handle(req, body)
		}
		if req.Header.Get("X-Oss-Callback-Verified") == "true" {
			r.mu.Lock()
			r.keys[req.Header.Get("Idempotency-Key")]++
			r.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"saved":true}`))
	})}
	srv := r.srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (r *recorder) down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

func (r *recorder) received() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.keys {
		out[k] = v
	}
	return out
}

// instance is one Caddy process with its own data directory (so its own
// instance id) and the shared storage.
type instance struct {
	t      *testing.T
	port   int
	home   string
	config string
	cmd    *exec.Cmd
	// header is sent with the start-up probe (a post-policy request), for
	// sites that need one, such as a user for their quota key.
	header http.Header
}

func newInstance(t *testing.T, storage string, emu *ossemu.Emulator, keyFile, appAddr string) *instance {
	in := &instance{t: t, port: freePort(t), home: t.TempDir()}
	in.config = siteConfig(storage, in.port, emu, fmt.Sprintf(`
		callback {
			url http://localhost:%d/oss/callback
			trusted_key %s
			answer_within 500ms
		}`, in.port, keyFile), appAddr)
	return in
}

// siteConfig is an instance's Caddyfile: the storage line, and the site
// on port with an oss_upload for the emulator's cl-bucket whose block goes
// on with rest (lines indented two tabs), in front of upstream.
func siteConfig(storage string, port int, emu *ossemu.Emulator, rest, upstream string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	skip_install_trust
	%s
}
http://localhost:%d {
	oss_upload {
		bucket cl-bucket
		region cn-hangzhou
		endpoint %s
		upload_url %s
		access_key_id cl-ak
		access_key_secret cl-secret%s
	}
	reverse_proxy %s
}`, storage, port, emu.Endpoint(), emu.BucketURL("cl-bucket"), rest, upstream)
}

func (in *instance) start() {
	t := in.t
	bin, err := caddyBin()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(in.home, "Caddyfile")
	if err := os.WriteFile(file, []byte(in.config), 0o600); err != nil {
		t.Fatal(err)
	}
	in.cmd = exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	in.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+in.home, "XDG_CONFIG_HOME="+in.home, "HOME="+in.home)
	in.cmd.Stdout = io.Discard
	logFile, _ := os.Create(filepath.Join(in.home, "caddy.log"))
	in.cmd.Stderr = logFile
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.kill)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d/oss/post-policy?filename=a.txt", in.port), nil)
		for k, v := range in.header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), `"policy"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(in.home, "caddy.log"))
			t.Fatalf("caddy on :%d did not start: %v\n%s", in.port, err, log)
		}
	}
}

// kill ends the process at once, as a crash would (SIGKILL).
func (in *instance) kill() {
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Signal(syscall.SIGKILL)
		_ = in.cmd.Wait()
		in.cmd = nil
	}
}

// upload asks the instance for a policy and uploads to the emulator; OSS
// calls the instance back. The uploader must be told "queued".
func (in *instance) upload(t *testing.T, toOSS *http.Client, content string) string {
	t.Helper()
	_, status, b, err := in.uploadOnce(toOSS, content)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(in.home, "caddy.log"))
		t.Fatalf("%v\n%s", err, log)
	}
	var answer struct {
		Status string `json:"status"`
		Key    string `json:"idempotency_key"`
	}
	if status != 200 || json.Unmarshal([]byte(b), &answer) != nil || answer.Status != "queued" || answer.Key == "" {
		t.Fatalf("uploader got %d %s, want a queued answer", status, b)
	}
	return answer.Key
}

// uploadOnce makes one PostObject upload of content and returns its object
// key and what OSS told the uploader.
func (in *instance) uploadOnce(toOSS *http.Client, content string) (object string, status int, body string, err error) {
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/oss/post-policy?filename=f.txt&type=text/plain", in.port))
	if err != nil {
		return "", 0, "", err
	}
	var p struct {
		URL    string            `json:"url"`
		Fields map[string]string `json:"fields"`
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(pb, &p); err != nil || resp.StatusCode != 200 {
		return "", 0, "", fmt.Errorf("post-policy: %d %s", resp.StatusCode, pb)
	}
	resp, err = postObject(toOSS, p.URL, p.Fields, "f.txt", content)
	if err != nil {
		return "", 0, "", fmt.Errorf("upload to %s: %w", p.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return p.Fields["key"], resp.StatusCode, string(b), nil
}

// Callbacks queued while the app is down survive a SIGKILL: the restarted
// process delivers them, or, when it does not come back, another instance
// sharing the storage takes its queue over. Each upload reaches the app
// exactly once. Run on the file system and on a real redis-server.
func TestQueueSurvivesCrash(t *testing.T) {
	for _, backend := range []string{"file_system", "redis"} {
		for _, recovery := range []string{"restart", "takeover"} {
			t.Run(backend+"/"+recovery, func(t *testing.T) {
				storage := "storage file_system " + t.TempDir()
				if backend == "redis" {
					storage = "storage " + redisModule(redistest.Start(t).Addr)
				}
				crashAndRecover(t, storage, recovery)
			})
		}
	}
}

func crashAndRecover(t *testing.T, storage, recovery string) {
	emu, keyFile := startEmulator(t)
	toOSS := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, emu.Addr())
		}}}
	app := newRecorder(t) // down

	a := newInstance(t, storage, emu, keyFile, app.addr)
	a.start()
	if recovery == "takeover" {
		// A second instance of the same site (the same callback URL, as
		// behind a load balancer), running alongside, with its own
		// instance id and port.
		b := newInstance(t, storage, emu, keyFile, app.addr)
		b.config = strings.Replace(b.config, fmt.Sprintf("url http://localhost:%d/", b.port), fmt.Sprintf("url http://localhost:%d/", a.port), 1)
		b.start()
	}
	want := map[string]bool{}
	for i := range 5 {
		want[a.upload(t, toOSS, fmt.Sprintf("queued %d", i))] = true
	}
	a.kill()
	app.up(t)
	if recovery == "restart" {
		a.start()
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(app.received()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // nothing more arrives
	got := app.received()
	if len(got) != len(want) {
		t.Fatalf("%d of %d callbacks delivered: %v", len(got), len(want), got)
	}
	for k, n := range got {
		if !want[k] || n != 1 {
			t.Errorf("callback %s delivered %d times (queued here: %v)", k, n, want[k])
		}
	}
	if strings.Contains(fmt.Sprint(got), "\"\"") {
		t.Error("a delivery had no Idempotency-Key")
	}
}

// postObject sends a PostObject form with fields and a file of content,
// named name, to url through client.
func postObject(client *http.Client, url string, fields map[string]string, name, content string) (*http.Response, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = io.WriteString(fw, content)
	_ = mw.Close()
	return client.Post(url, mw.FormDataContentType(), &buf)
}
