package sandbox

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

//go:embed page
var pageFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(pageFiles, "page/index.html"))

// demoApp is the sandbox's stand-in for a legacy app behind Caddy: it
// serves the upload page, records the callbacks Caddy verified and shows
// what the emulator stored. It can be paused, to show what happens to
// callbacks while an app is down.
type demoApp struct {
	URL    string // http://127.0.0.1:<port>
	Addr   string // 127.0.0.1:<port>
	server *http.Server
	bundle aliOSSBundle
	uppy   uppyBundle
	emu    *ossemu.Emulator
	// confirmPath is the site's confirm_path with --no-callbacks, which
	// the page names; "" when OSS calls back.
	confirmPath string

	mu        sync.Mutex
	paused    bool
	callbacks []demoCallback
	attempts  map[string]int // deliveries seen per Idempotency-Key, refused ones included
}

// demoCallback is one callback as the app received it.
type demoCallback struct {
	ReceivedAt time.Time `json:"receivedAt"`
	Verified   string    `json:"verified"`
	// IdempotencyKey is the delivery's Idempotency-Key header: the same for
	// every attempt to deliver one upload's callback.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// Attempts counts the deliveries of this callback the app saw up to
	// this one, those it refused while paused included.
	Attempts int               `json:"attempts"`
	Fields   map[string]string `json:"fields"`
}

const (
	maxDemoCallbacks = 100
	maxDemoKeys      = 1000 // Idempotency-Keys whose attempts are counted
)

func startDemoApp(bundle aliOSSBundle, uppy uppyBundle, emu *ossemu.Emulator, confirmPath string) (*demoApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &demoApp{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), bundle: bundle, uppy: uppy, emu: emu,
		confirmPath: confirmPath, attempts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	for _, script := range []string{"app.js", "tabs.js", "uppy-tab.js"} {
		mux.HandleFunc("GET /"+script, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFileFS(w, r, pageFiles, "page/"+script)
		})
	}
	mux.HandleFunc("GET /uppy/{name}", a.serveUppy)
	mux.HandleFunc("GET /ali-oss.js", func(w http.ResponseWriter, r *http.Request) {
		if a.bundle.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, a.bundle.Path)
	})
	mux.HandleFunc("POST /oss/callback", a.callback)
	mux.HandleFunc("GET /demo/callbacks", a.listCallbacks)
	mux.HandleFunc("GET /demo/state", a.state)
	mux.HandleFunc("POST /demo/pause", func(w http.ResponseWriter, r *http.Request) { a.setPaused(w, true) })
	mux.HandleFunc("POST /demo/resume", func(w http.ResponseWriter, r *http.Request) { a.setPaused(w, false) })
	mux.HandleFunc("GET "+objectsPath, a.listObjects)
	mux.HandleFunc("GET "+ossCallbacksPath, a.listOSSCallbacks)

	// Object keys are routed before the mux: it would answer a path with
	// "." or ".." segments by redirecting to a cleaned path, and the key
	// must be refused as written instead.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key, ok := strings.CutPrefix(r.URL.Path, objectsPath+"/"); ok {
			a.object(w, r, key)
			return
		}
		mux.ServeHTTP(w, r)
	})
	a.server = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.server.Serve(ln) }()
	return a, nil
}

// pageData fills the page template.
type pageData struct {
	AliOSS       string // the bundle's <script src>
	AliOSSSource string // fromFlag, fromLocal or fromCDN
	AliOSSShown  string // the flag's or the local copy's path
	AliOSSCDN    string
	Bucket       string
	Prefix       string
	UppyJS       string // Uppy's ES module bundle
	UppyCSS      string
	UppySource   string // fromFlag, fromLocal or fromCDN
	UppyShown    string // the flag's or the local copy's dist folder
	UppyVersion  string
	UppyPath     string // oss_upload's uppy_path
	ConfirmPath  string // oss_upload's confirm_path with --no-callbacks, else ""
}

func (a *demoApp) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, pageData{
		AliOSS: a.bundle.scriptSrc(), AliOSSSource: a.bundle.Source, AliOSSShown: a.bundle.Shown,
		AliOSSCDN: aliOSSCDN, Bucket: bucketName, Prefix: keyPrefix,
		UppyJS: a.uppy.moduleSrc(), UppyCSS: a.uppy.cssHref(), UppySource: a.uppy.Source,
		UppyShown: a.uppy.Shown, UppyVersion: a.uppy.Version, UppyPath: uppyPath,
		ConfirmPath: a.confirmPath,
	})
}

// callback records a verified callback and answers what OSS relays to the
// uploader: 200 with JSON. While the app is paused it records nothing and
// answers 503, as an app that is down would. A delivery whose
// Idempotency-Key it already recorded is answered as the first one was and
// not recorded again.
func (a *demoApp) callback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeDemoError(w, http.StatusBadRequest, "reading the callback failed")
		return
	}
	status, answer := a.record(r.Header, body)
	writeDemoJSON(w, status, answer)
}

// record counts a delivery and records it unless the app is paused or
// already has it; it returns the app's answer.
func (a *demoApp) record(h http.Header, body []byte) (int, any) {
	key := h.Get("Idempotency-Key")
	cb := demoCallback{ReceivedAt: time.Now().UTC(), Verified: h.Get("X-Oss-Callback-Verified"),
		IdempotencyKey: key, Fields: callbackFields(h, body)}
	a.mu.Lock()
	defer a.mu.Unlock()
	cb.Attempts = a.countAttempt(key)
	if a.paused {
		return http.StatusServiceUnavailable, map[string]string{"error": "the demo app is paused"}
	}
	for _, earlier := range a.callbacks {
		if key != "" && earlier.IdempotencyKey == key {
			return http.StatusOK, map[string]any{"ok": true, "message": "the demo app already stored this upload", "callback": earlier}
		}
	}
	a.callbacks = append(a.callbacks, cb)
	if len(a.callbacks) > maxDemoCallbacks {
		a.callbacks = a.callbacks[len(a.callbacks)-maxDemoCallbacks:]
	}
	return http.StatusOK, map[string]any{"ok": true, "message": "the demo app stored this upload", "callback": cb}
}

// callbackFields reads a form or, with body_type json, a JSON callback body.
func callbackFields(h http.Header, body []byte) map[string]string {
	fields := map[string]string{}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "application/json" {
		var doc map[string]any
		_ = json.Unmarshal(body, &doc)
		for k, v := range doc {
			fields[k] = fmt.Sprint(v)
		}
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		for k, v := range form {
			fields[k] = v[0]
		}
	}
	return fields
}

// countAttempt counts a delivery of the callback with this
// Idempotency-Key and returns how many the app has seen; a callback
// without one is its own first attempt. a.mu must be held.
func (a *demoApp) countAttempt(key string) int {
	if key == "" {
		return 1
	}
	if _, seen := a.attempts[key]; !seen && len(a.attempts) >= maxDemoKeys {
		for k := range a.attempts { // forget one, so the map stays bounded
			delete(a.attempts, k)
			break
		}
	}
	a.attempts[key]++
	return a.attempts[key]
}

// demoState is GET /demo/state, and the answer to pause and resume.
type demoState struct {
	Paused bool `json:"paused"`
}

func (a *demoApp) state(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	st := demoState{Paused: a.paused}
	a.mu.Unlock()
	writeDemoJSON(w, http.StatusOK, st)
}

// setPaused pauses or resumes the app's callback route.
func (a *demoApp) setPaused(w http.ResponseWriter, paused bool) {
	a.mu.Lock()
	a.paused = paused
	a.mu.Unlock()
	writeDemoJSON(w, http.StatusOK, demoState{Paused: paused})
}

func (a *demoApp) listCallbacks(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	out := append([]demoCallback{}, a.callbacks...)
	a.mu.Unlock()
	writeDemoJSON(w, http.StatusOK, out)
}

// writeDemoJSON answers JSON with a Content-Length, which OSS requires of
// a callback answer (it refuses a chunked one), whatever its size.
func writeDemoJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeDemoError(w http.ResponseWriter, status int, msg string) {
	writeDemoJSON(w, status, map[string]string{"error": msg})
}

// Close stops the app.
func (a *demoApp) Close() { _ = a.server.Close() }
