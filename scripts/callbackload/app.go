package main

// The recording app: it answers every callback with {"ok":true} and counts
// the deliveries per object, for GET /__bench/counts.

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

type recorder struct {
	mu       sync.Mutex
	counts   map[string]int
	verified map[string]int // deliveries carrying X-Oss-Callback-Verified: true
}

func runApp(args []string) {
	fs := flag.NewFlagSet("app", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve on")
	_ = fs.Parse(args)
	if err := loopbackAddr("listen", *listen); err != nil {
		log.Fatal(err)
	}
	rec := &recorder{counts: map[string]int{}, verified: map[string]int{}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

var okAnswer = []byte(`{"ok":true}`)

func (a *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/__bench/counts" {
		a.serveCounts(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	object := objectOf(r.Header.Get("Content-Type"), body)
	if object == "" {
		http.Error(w, "no object in the body", http.StatusBadRequest)
		return
	}
	verified := r.Header.Get("X-Oss-Callback-Verified") == "true"
	a.mu.Lock()
	a.counts[object]++
	if verified {
		a.verified[object]++
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(okAnswer)))
	_, _ = w.Write(okAnswer)
}

// objectOf reads the object field of a form or JSON callback body.
func objectOf(contentType string, body []byte) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "application/json") {
		var doc struct {
			Object string `json:"object"`
		}
		if json.Unmarshal(body, &doc) == nil {
			return doc.Object
		}
		return ""
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	return v.Get("object")
}

// countsAnswer is GET /__bench/counts: deliveries per object, and how many
// of them carried X-Oss-Callback-Verified: true.
type countsAnswer struct {
	Counts   map[string]int `json:"counts"`
	Verified int            `json:"verified"`
}

func (a *recorder) serveCounts(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	out := countsAnswer{Counts: map[string]int{}}
	a.mu.Lock()
	for k, n := range a.counts {
		if strings.HasPrefix(k, prefix) {
			out.Counts[k] = n
			out.Verified += a.verified[k]
		}
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
