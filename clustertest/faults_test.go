package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/redistest"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

// objectApp is the app of the fault tests: it records every request by the
// object its callback body names, and answers 200 while up.
type objectApp struct {
	*recorder
	mu         sync.Mutex
	objects    map[string]int      // verified deliveries by object
	keys       map[string][]string // Idempotency-Keys seen by object
	unverified int
}

func newObjectApp(t *testing.T) *objectApp {
	a := &objectApp{recorder: newRecorder(t), objects: map[string]int{}, keys: map[string][]string{}}
	a.handle = func(req *http.Request, body []byte) {
		object := objectOf(body)
		a.mu.Lock()
		defer a.mu.Unlock()
		if req.Header.Get("X-Oss-Callback-Verified") != "true" {
			a.unverified++
			return
		}
		a.objects[object]++
		a.keys[object] = append(a.keys[object], req.Header.Get("Idempotency-Key"))
	}
	return a
}

func (a *objectApp) delivered() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]int, len(a.objects))
	for k, v := range a.objects {
		out[k] = v
	}
	return out
}

// objectOf is the object a callback body (form or JSON) names.
func objectOf(body []byte) string {
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		var m struct {
			Object string `json:"object"`
		}
		_ = json.Unmarshal(body, &m)
		return m.Object
	}
	q, _ := url.ParseQuery(string(body))
	return q.Get("object")
}

// told is what one uploader was told.
type told struct {
	phase  string
	status int
	body   string
}

// ok reports whether the uploader was told its upload is taken: OSS's 200
// with the app's answer or "queued".
func (t told) ok() bool { return t.status == http.StatusOK }

// Storage fails under a running instance, phase after phase (stalls longer
// than answer_within, EIO on every call, a full disk), with the app up or
// down. For every upload the test counts what the uploader was told and
// what the app received: an upload told 200 reaches the app exactly once,
// with one Idempotency-Key; one told otherwise reaches it at most once;
// nothing unverified reaches it; and every error line of the handler
// carries its cause. On the file system and on a real redis-server.
func TestFaultsCountEveryUpload(t *testing.T) {
	for _, backend := range []string{"file_system", "redis"} {
		t.Run(backend, func(t *testing.T) {
			inner := "file_system " + t.TempDir()
			if backend == "redis" {
				inner = redisModule(redistest.Start(t).Addr)
			}
			countEveryUpload(t, inner)
		})
	}
}

func countEveryUpload(t *testing.T, inner string) {
	emu, keyFile := startEmulator(t)
	toOSS := emulatorClient(emu)
	app := newObjectApp(t)
	app.up(t)
	control := filepath.Join(t.TempDir(), "faults")
	setFault := func(mode string) {
		if err := os.WriteFile(control, []byte(mode), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setFault("")
	storage := "storage faulty {\n\t\tcontrol " + control + "\n\t\tinner " + inner + "\n\t}"
	in := newInstance(t, storage, emu, keyFile, app.addr)
	in.start()

	phases := []struct {
		name, fault string
		appUp       bool
	}{
		{"healthy", "", true},
		{"app down", "", false},
		{"stall, app down", "stall", false},
		{"eio, app up", "eio", true},
		{"full disk, app up", "enospc", true},
		{"stall, app up", "stall", true},
		{"full disk, app down", "enospc", false},
		{"healthy again", "", true},
	}
	var mu sync.Mutex
	uploads := map[string]told{}
	for _, p := range phases {
		if p.appUp {
			app.up(t)
		} else {
			app.down()
		}
		setFault(p.fault)
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 3 {
					object, status, body, err := in.uploadOnce(toOSS, fmt.Sprintf("%s %d %d", p.name, w, i))
					if err != nil {
						t.Errorf("%s: %v", p.name, err)
						return
					}
					mu.Lock()
					uploads[object] = told{p.name, status, body}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	setFault("")
	app.up(t)

	var want []string
	for object, u := range uploads {
		if u.ok() {
			want = append(want, object)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		got := app.delivered()
		missing := 0
		for _, o := range want {
			if got[o] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // nothing more arrives

	got := app.delivered()
	byPhase := map[string][2]int{}
	for object, u := range uploads {
		n := got[object]
		c := byPhase[u.phase]
		if u.ok() {
			c[0]++
			if n != 1 {
				t.Errorf("%s: upload %s was told %d %s, and the app received it %d times", u.phase, object, u.status, u.body, n)
			}
		} else {
			c[1]++
			if n > 1 {
				t.Errorf("%s: upload %s was told %d, and the app received it %d times", u.phase, object, u.status, n)
			}
			if strings.Contains(u.body, `"queued"`) || strings.Contains(u.body, `"saved"`) {
				t.Errorf("%s: upload %s was told %d %s", u.phase, object, u.status, u.body)
			}
		}
		byPhase[u.phase] = c
		app.mu.Lock()
		keys := app.keys[object]
		app.mu.Unlock()
		for _, k := range keys {
			if k == "" || k != keys[0] {
				t.Errorf("upload %s delivered with Idempotency-Keys %q", object, keys)
			}
		}
	}
	for object, n := range got {
		if _, ok := uploads[object]; !ok {
			t.Errorf("the app received %q (%d times), which no uploader sent", object, n)
		}
	}
	if app.unverified != 0 {
		t.Errorf("the app received %d unverified requests", app.unverified)
	}
	for _, p := range phases {
		t.Logf("%-20s told 200: %d, told otherwise: %d", p.name, byPhase[p.name][0], byPhase[p.name][1])
	}
	// Storage that refuses every write cannot record an upload: its
	// uploaders are told so (OSS's 203), never "queued".
	for _, name := range []string{"eio, app up", "full disk, app up", "full disk, app down"} {
		if byPhase[name][0] != 0 {
			t.Errorf("%s: %d uploads told 200 although nothing could be recorded", name, byPhase[name][0])
		}
	}
	if byPhase["healthy"][0] != 9 || byPhase["healthy again"][0] != 9 || byPhase["app down"][0] != 9 {
		t.Errorf("uploads with healthy storage not all told 200: %v", byPhase)
	}
	requireErrorCauses(t, filepath.Join(in.home, "caddy.log"))
	if t.Failed() {
		log, _ := os.ReadFile(filepath.Join(in.home, "caddy.log"))
		t.Logf("caddy's log:\n%s", log)
	}
}

// requireErrorCauses fails on an error line of oss_upload without a cause,
// and unless the storage faults were logged.
func requireErrorCauses(t *testing.T, logFile string) {
	t.Helper()
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	causes := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["level"] != "error" {
			continue
		}
		if l, _ := line["logger"].(string); !strings.Contains(l, "oss_upload") {
			continue
		}
		cause, _ := line["error"].(string)
		if cause == "" {
			t.Errorf("error line without a cause: %s", sc.Text())
			continue
		}
		for _, c := range []string{"input/output error", "no space left on device", "context deadline exceeded"} {
			if strings.Contains(cause, c) {
				causes[c]++
			}
		}
	}
	if causes["input/output error"] == 0 || causes["no space left on device"] == 0 {
		t.Errorf("storage faults not logged with their cause: %v", causes)
	}
}

// emulatorClient sends every request to the emulator, whatever the host.
func emulatorClient(emu *ossemu.Emulator) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, emu.Addr())
		}}}
}

// Redis restarts empty while callbacks are queued: the records are gone,
// and the instance says so, once per lost callback, with its id; nothing
// reaches the app.
func TestFaultsStoreRestartedEmpty(t *testing.T) {
	emu, keyFile := startEmulator(t)
	toOSS := emulatorClient(emu)
	app := newObjectApp(t) // down
	rs := newRedisServer(t)
	in := newInstance(t, "storage "+redisModule(rs.addr), emu, keyFile, app.addr)
	in.start()
	queued := map[string]bool{}
	for i := range 5 {
		queued[in.upload(t, toOSS, fmt.Sprintf("lost %d", i))] = true
	}
	rs.restart(t)
	app.up(t)
	logFile := filepath.Join(in.home, "caddy.log")
	lost := map[string]bool{}
	for deadline := time.Now().Add(60 * time.Second); len(lost) < len(queued) && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		b, _ := os.ReadFile(logFile)
		for _, l := range strings.Split(string(b), "\n") {
			var line struct {
				Level, Msg, ID string
			}
			if json.Unmarshal([]byte(l), &line) == nil && line.Level == "error" && strings.Contains(line.Msg, "vanished from storage") {
				lost[line.ID] = true
			}
		}
	}
	for id := range queued {
		if !lost[id] {
			t.Errorf("queued callback %s vanished without an error line (lost lines: %v)", id, lost)
		}
	}
	for id := range lost {
		if !queued[id] {
			t.Errorf("%s reported lost, but was not queued", id)
		}
	}
	if n := len(app.delivered()); n != 0 {
		t.Errorf("the app received %d callbacks whose records were gone", n)
	}
}

// redisServer is a redis-server on a fixed loopback port that can be
// restarted empty.
type redisServer struct {
	addr, dir string
	cmd       *exec.Cmd
}

func newRedisServer(t *testing.T) *redisServer {
	rs := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: t.TempDir()}
	rs.start(t)
	t.Cleanup(rs.stop)
	return rs
}

func (rs *redisServer) start(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (scripts/test.sh installs Debian's redis-server)")
	}
	_, port, _ := net.SplitHostPort(rs.addr)
	rs.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", rs.dir)
	rs.cmd.Stdout, rs.cmd.Stderr = io.Discard, io.Discard
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	redistest.Wait(t, rs.addr)
}

func (rs *redisServer) stop() {
	if rs.cmd != nil && rs.cmd.Process != nil {
		_ = rs.cmd.Process.Kill()
		_ = rs.cmd.Wait()
		rs.cmd = nil
	}
}

func (rs *redisServer) restart(t *testing.T) {
	rs.stop()
	rs.start(t)
}
