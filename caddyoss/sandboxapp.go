package caddyoss

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
	"sync"
	"time"
)

//go:embed sandbox
var sandboxFiles embed.FS

var sandboxPage = template.Must(template.ParseFS(sandboxFiles, "sandbox/index.html"))

// demoApp is the sandbox's stand-in for a legacy app behind Caddy: it
// serves the upload page and records the callbacks Caddy verified.
type demoApp struct {
	URL    string
	server *http.Server
	jsPath string

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

func startDemoApp(jsPath string) (*demoApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &demoApp{URL: "http://" + ln.Addr().String(), jsPath: jsPath}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFileFS(w, r, sandboxFiles, "sandbox/app.js")
	})
	mux.HandleFunc("GET /ali-oss.js", func(w http.ResponseWriter, r *http.Request) {
		if a.jsPath == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, a.jsPath)
	})
	mux.HandleFunc("POST /oss/callback", a.callback)
	mux.HandleFunc("GET /demo/callbacks", a.list)
	a.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.server.Serve(ln) }()
	return a, nil
}

func (a *demoApp) page(w http.ResponseWriter, r *http.Request) {
	src := aliOSSCDN
	if a.jsPath != "" {
		src = "/ali-oss.js"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = sandboxPage.Execute(w, map[string]string{"AliOSS": src})
}

// callback records a verified callback and answers what OSS relays to the
// uploader: 200 with JSON.
func (a *demoApp) callback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, `{"error":"reading the callback failed"}`, http.StatusBadRequest)
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
	writeDemoJSON(w, map[string]any{"ok": true, "message": "the demo app stored this upload", "callback": cb})
}

func (a *demoApp) list(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	out := append([]demoCallback{}, a.callbacks...)
	a.mu.Unlock()
	writeDemoJSON(w, out)
}

func writeDemoJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// Close stops the app.
func (a *demoApp) Close() { _ = a.server.Close() }
