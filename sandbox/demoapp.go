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
// what the emulator stored.
type demoApp struct {
	URL    string // http://127.0.0.1:<port>
	Addr   string // 127.0.0.1:<port>
	server *http.Server
	bundle aliOSSBundle
	emu    *ossemu.Emulator

	mu        sync.Mutex
	callbacks []demoCallback
}

// demoCallback is one callback as the app received it.
type demoCallback struct {
	ReceivedAt time.Time         `json:"receivedAt"`
	Verified   string            `json:"verified"`
	Fields     map[string]string `json:"fields"`
}

const maxDemoCallbacks = 100

func startDemoApp(bundle aliOSSBundle, emu *ossemu.Emulator) (*demoApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &demoApp{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), bundle: bundle, emu: emu}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFileFS(w, r, pageFiles, "page/app.js")
	})
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
	mux.HandleFunc("GET "+objectsPath, a.listObjects)

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
}

func (a *demoApp) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, pageData{
		AliOSS: a.bundle.scriptSrc(), AliOSSSource: a.bundle.Source, AliOSSShown: a.bundle.Shown,
		AliOSSCDN: aliOSSCDN, Bucket: bucketName, Prefix: keyPrefix,
	})
}

// callback records a verified callback and answers what OSS relays to the
// uploader: 200 with JSON.
func (a *demoApp) callback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeDemoError(w, http.StatusBadRequest, "reading the callback failed")
		return
	}
	fields := map[string]string{}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
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
	cb := demoCallback{ReceivedAt: time.Now().UTC(), Verified: r.Header.Get("X-Oss-Callback-Verified"), Fields: fields}
	a.mu.Lock()
	a.callbacks = append(a.callbacks, cb)
	if len(a.callbacks) > maxDemoCallbacks {
		a.callbacks = a.callbacks[len(a.callbacks)-maxDemoCallbacks:]
	}
	a.mu.Unlock()
	writeDemoJSON(w, http.StatusOK, map[string]any{"ok": true, "message": "the demo app stored this upload", "callback": cb})
}

func (a *demoApp) listCallbacks(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	out := append([]demoCallback{}, a.callbacks...)
	a.mu.Unlock()
	writeDemoJSON(w, http.StatusOK, out)
}

func writeDemoJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeDemoError(w http.ResponseWriter, status int, msg string) {
	writeDemoJSON(w, status, map[string]string{"error": msg})
}

// Close stops the app.
func (a *demoApp) Close() { _ = a.server.Close() }
