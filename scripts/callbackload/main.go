// Command callbackload is the load generator of scripts/bench.sh's callback
// benchmark, and the app the callbacks are delivered to.
//
//	callbackload app -listen 127.0.0.1:18414
//	callbackload run -policy-url http://127.0.0.1:18411/oss/post-policy -oss-addr 127.0.0.1:41234 \
//		-app-url http://127.0.0.1:18414 -caddy-pid 1234 -run r1 -n 2000 -c 200
//
// app answers every POST with {"ok":true} and counts, per object (the
// `object` field of the callback body, form or JSON), how many times it was
// delivered; GET /__bench/counts?prefix=P lists the counts of the objects
// under P.
//
// run makes n PostObject uploads of small unique files through the
// emulator. First it asks Caddy for one post-policy per upload (X-User: the
// run id, so a key_prefix of uploads/{http.request.header.X-User}/ puts
// every object of the run under its own prefix); then, with Caddy's CPU time
// read from /proc/<pid>/stat, c workers post the forms to the emulator,
// whose answer waits for the upload callback. It prints one line of
// space-separated numbers, whose names `callbackload run -header` prints:
// latencies, answers by status, Caddy's CPU time per upload, and how many
// times the app received each stored object. Every address must be on
// loopback, and the run ends within -timeout.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("callbackload: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: callbackload app|run [flags]")
	}
	switch os.Args[1] {
	case "app":
		runApp(os.Args[2:])
	case "run":
		runLoad(os.Args[2:])
	default:
		log.Fatalf("unknown command %q (app or run)", os.Args[1])
	}
}

// loopbackHost reports whether host (no port) is a loopback name or
// address: localhost, *.localhost, or a loopback IP.
func loopbackHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loopbackAddr checks a host:port whose host must be a loopback IP (it is
// dialled as it is).
func loopbackAddr(flagName, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-%s %q: %v", flagName, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-%s %q: not a loopback IP address", flagName, addr)
	}
	return nil
}

// loopbackURL checks an http URL on loopback.
func loopbackURL(flagName, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-%s %q: not an http URL", flagName, raw)
	}
	if !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("-%s %q: not on loopback", flagName, raw)
	}
	return u, nil
}

// ---- the app ----

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

// ---- the load ----

// policy is what the post-policy route answers, as far as an uploader
// needs it; fields keeps the route's order.
type policy struct {
	URL    string
	Key    string
	Fields [][2]string
}

func (p *policy) UnmarshalJSON(b []byte) error {
	var doc struct {
		URL    string          `json:"url"`
		Key    string          `json:"key"`
		Fields json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	p.URL, p.Key = doc.URL, doc.Key
	dec := json.NewDecoder(bytes.NewReader(doc.Fields))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("fields is not an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		p.Fields = append(p.Fields, [2]string{name, s})
	}
	return nil
}

type loadConfig struct {
	policyURL  *url.URL
	ossAddr    string
	appURL     *url.URL
	caddyPID   int
	ossemuPID  int
	clkTck     int
	run        string
	n, c       int
	signConc   int
	size       int
	filename   string
	fileType   string
	settle     time.Duration
	maxSettle  time.Duration
	timeout    time.Duration
	showErrors int
}

// result is the printed line, in this order.
type result struct {
	uploads    int
	seconds    float64
	ok200      int
	cb203      int
	other      int
	p50ms      float64
	p99ms      float64
	cpuUS      float64 // Caddy's CPU µs per upload
	del0       int     // stored objects (200 or 203) never delivered
	del1       int
	delMore    int
	stray      int     // deliveries of objects this run did not store
	verified   int     // deliveries marked verified by the handler
	caddyCore0 float64 // during the uploads, as are the busy shares
	core0Busy  float64
	core1Busy  float64
	ossemuUS   float64 // the emulator's CPU µs per upload, when its pid is known
}

const header = "uploads seconds ok200 cb203 other p50_ms p99_ms caddy_cpu_us_per_upload " +
	"delivered0 delivered1 delivered_more stray verified_deliveries caddy_pct_of_cpu0 cpu0_busy_pct cpu1_busy_pct ossemu_cpu_us_per_upload"

func (r result) line() string {
	return fmt.Sprintf("%d %.3f %d %d %d %.2f %.2f %.1f %d %d %d %d %d %.1f %.1f %.1f %.1f",
		r.uploads, r.seconds, r.ok200, r.cb203, r.other, r.p50ms, r.p99ms, r.cpuUS,
		r.del0, r.del1, r.delMore, r.stray, r.verified, r.caddyCore0, r.core0Busy, r.core1Busy, r.ossemuUS)
}

func runLoad(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	policyURL := fs.String("policy-url", "", "Caddy's post-policy route, e.g. http://127.0.0.1:18411/oss/post-policy")
	ossAddr := fs.String("oss-addr", "", "the emulator's host:port (a loopback IP); every upload URL is dialled there")
	appURL := fs.String("app-url", "", "the recording app, for its delivery counts")
	cfg := loadConfig{}
	fs.IntVar(&cfg.caddyPID, "caddy-pid", 0, "pid of the Caddy whose CPU time is measured")
	fs.IntVar(&cfg.ossemuPID, "ossemu-pid", 0, "pid of the emulator, to report its CPU time too (optional)")
	fs.IntVar(&cfg.clkTck, "clk-tck", 100, "clock ticks per second of /proc (getconf CLK_TCK)")
	fs.StringVar(&cfg.run, "run", "", "run id: sent as X-User, and the objects' prefix under uploads/")
	fs.IntVar(&cfg.n, "n", 1000, "uploads")
	fs.IntVar(&cfg.c, "c", 100, "concurrent uploads")
	fs.IntVar(&cfg.signConc, "sign-c", 32, "concurrent post-policy requests in the (unmeasured) signing phase")
	fs.IntVar(&cfg.size, "size", 1024, "bytes per upload")
	fs.StringVar(&cfg.filename, "filename", "a.png", "filename sent to the post-policy route")
	fs.StringVar(&cfg.fileType, "type", "image/png", "content type sent to the post-policy route and with the file")
	fs.DurationVar(&cfg.settle, "settle", time.Second, "after the last upload, wait until the app's counts are unchanged this long")
	fs.DurationVar(&cfg.maxSettle, "max-settle", 15*time.Second, "longest wait for late deliveries")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "the whole run ends within this")
	fs.IntVar(&cfg.showErrors, "show-errors", 3, "print this many non-200 answers to stderr")
	printHeader := fs.Bool("header", false, "print the names of the result's fields and exit")
	_ = fs.Parse(args)
	if *printHeader {
		fmt.Println(header)
		return
	}
	var err error
	if cfg.policyURL, err = loopbackURL("policy-url", *policyURL); err != nil {
		log.Fatal(err)
	}
	if cfg.appURL, err = loopbackURL("app-url", *appURL); err != nil {
		log.Fatal(err)
	}
	if err = loopbackAddr("oss-addr", *ossAddr); err != nil {
		log.Fatal(err)
	}
	cfg.ossAddr = *ossAddr
	switch {
	case cfg.caddyPID <= 0:
		log.Fatal("-caddy-pid is required")
	case cfg.run == "" || strings.ContainsAny(cfg.run, "/?#&% "):
		log.Fatal("-run must be a plain word")
	case cfg.n < 1 || cfg.c < 1 || cfg.signConc < 1 || cfg.size < 1 || cfg.clkTck < 1:
		log.Fatal("-n, -c, -sign-c, -size and -clk-tck must be positive")
	}
	if _, err := procTicks(cfg.caddyPID); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	res, err := load(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.line())
}

// clients: keep-alive pools sized for the concurrency. Everything the
// uploads address (<bucket>.localhost:<port> and the like) is dialled on
// the emulator's address, as a browser resolving *.localhost would.
func newClients(cfg loadConfig) (toCaddy, toOSS *http.Client) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	toCaddy = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: cfg.signConc + 4,
	}}
	toOSS = &http.Client{
		// OSS waits 5 s for a callback; the rest is the upload itself.
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, cfg.ossAddr)
			},
			MaxIdleConns:        cfg.c + 16,
			MaxIdleConnsPerHost: cfg.c + 16,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return toCaddy, toOSS
}

func load(ctx context.Context, cfg loadConfig) (result, error) {
	toCaddy, toOSS := newClients(cfg)
	defer toCaddy.CloseIdleConnections()
	defer toOSS.CloseIdleConnections()

	policies, err := signAll(ctx, cfg, toCaddy)
	if err != nil {
		return result{}, err
	}
	prefix := ""
	for i, p := range policies {
		u, err := url.Parse(p.URL)
		if err != nil || u.Scheme != "http" || !loopbackHost(u.Hostname()) {
			return result{}, fmt.Errorf("policy %d: upload URL %q is not http on loopback", i, p.URL)
		}
		if i == 0 {
			if j := strings.Index(p.Key, cfg.run+"/"); j >= 0 {
				prefix = p.Key[:j+len(cfg.run)+1]
			}
		}
	}
	if prefix == "" {
		return result{}, fmt.Errorf("the key %q does not hold the run id %q: set key_prefix to include {http.request.header.X-User}/", policies[0].Key, cfg.run)
	}
	for i, p := range policies {
		if !strings.HasPrefix(p.Key, prefix) {
			return result{}, fmt.Errorf("policy %d: key %q is not under %q", i, p.Key, prefix)
		}
	}

	// Bodies are built before measuring, so the measured phase is the
	// uploads and nothing else.
	type upload struct {
		body        []byte
		contentType string
		url         string
	}
	uploads := make([]upload, len(policies))
	for i, p := range policies {
		b, ct, err := formBody(p, cfg, i)
		if err != nil {
			return result{}, err
		}
		uploads[i] = upload{b, ct, p.URL}
	}

	latencies := make([]time.Duration, len(uploads))
	statuses := make([]int, len(uploads)) // 0: no answer
	var next atomic.Int64
	var shown atomic.Int64
	before, err := procTicks(cfg.caddyPID)
	if err != nil {
		return result{}, err
	}
	emuBefore := emuTicks(cfg)
	coresBefore, _ := coreTicks()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < min(cfg.c, len(uploads)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(uploads) || ctx.Err() != nil {
					return
				}
				u := uploads[i]
				t0 := time.Now()
				status, answer, err := post(ctx, toOSS, u.url, u.contentType, u.body)
				latencies[i] = time.Since(t0)
				statuses[i] = status
				if status != http.StatusOK && shown.Add(1) <= int64(cfg.showErrors) {
					if err != nil {
						log.Printf("upload %d: %v", i, err)
					} else {
						log.Printf("upload %d: %d %s", i, status, truncate(answer, 300))
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The cores' shares are of the uploads' time; CPU per upload also
	// counts what Caddy does until the deliveries settle.
	mid, err := procTicks(cfg.caddyPID)
	if err != nil {
		return result{}, err
	}
	coresMid, _ := coreTicks()
	if ctx.Err() != nil {
		return result{}, fmt.Errorf("the run timed out after %d of %d uploads", min(int(next.Load()), len(uploads)), len(uploads))
	}

	counts, verified, err := settle(ctx, cfg, toCaddy, prefix, len(uploads))
	if err != nil {
		return result{}, err
	}
	after, err := procTicks(cfg.caddyPID)
	if err != nil {
		return result{}, err
	}
	emuAfter := emuTicks(cfg)

	res := result{uploads: len(uploads), seconds: elapsed.Seconds(), verified: verified}
	stored := map[string]bool{}
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			res.ok200++
		case http.StatusNonAuthoritativeInfo:
			res.cb203++
		default:
			res.other++
		}
		// 200 and 203 both mean OSS stored the object.
		if s == http.StatusOK || s == http.StatusNonAuthoritativeInfo {
			stored[policies[i].Key] = true
		}
	}
	for k := range stored {
		switch n := counts[k]; {
		case n == 0:
			res.del0++
		case n == 1:
			res.del1++
		default:
			res.delMore++
		}
	}
	for k, n := range counts {
		if !stored[k] {
			res.stray += n
		}
	}
	sorted := append([]time.Duration(nil), latencies...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	res.p50ms = ms(percentile(sorted, 0.50))
	res.p99ms = ms(percentile(sorted, 0.99))
	perUpload := func(ticks int64) float64 {
		return float64(ticks) * 1e6 / float64(cfg.clkTck) / float64(len(uploads))
	}
	res.cpuUS = perUpload(after - before)
	if emuBefore >= 0 && emuAfter >= 0 {
		res.ossemuUS = perUpload(emuAfter - emuBefore)
	}
	if len(coresBefore) >= 2 && len(coresMid) >= 2 {
		t0 := coresMid[0].total - coresBefore[0].total
		t1 := coresMid[1].total - coresBefore[1].total
		if t0 > 0 {
			res.caddyCore0 = 100 * float64(mid-before) / float64(t0)
			res.core0Busy = 100 * float64(t0-(coresMid[0].idle-coresBefore[0].idle)) / float64(t0)
		}
		if t1 > 0 {
			res.core1Busy = 100 * float64(t1-(coresMid[1].idle-coresBefore[1].idle)) / float64(t1)
		}
	}
	return res, nil
}

// emuTicks is the emulator's CPU time, or -1 when its pid is not known.
func emuTicks(cfg loadConfig) int64 {
	if cfg.ossemuPID <= 0 {
		return -1
	}
	t, err := procTicks(cfg.ossemuPID)
	if err != nil {
		return -1
	}
	return t
}

// signAll asks the post-policy route for one policy per upload.
func signAll(ctx context.Context, cfg loadConfig, client *http.Client) ([]policy, error) {
	q := cfg.policyURL.Query()
	q.Set("filename", cfg.filename)
	q.Set("type", cfg.fileType)
	q.Set("size", strconv.Itoa(cfg.size))
	u := *cfg.policyURL
	u.RawQuery = q.Encode()
	target := u.String()

	policies := make([]policy, cfg.n)
	errs := make(chan error, cfg.signConc)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(cfg.signConc, cfg.n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.n {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				req.Header.Set("X-User", cfg.run)
				resp, err := client.Do(req)
				if err != nil {
					errs <- fmt.Errorf("post-policy: %v", err)
					next.Store(int64(cfg.n))
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("post-policy: %d %s", resp.StatusCode, truncate(b, 300))
					next.Store(int64(cfg.n))
					return
				}
				if err := json.Unmarshal(b, &policies[i]); err != nil || policies[i].URL == "" || policies[i].Key == "" {
					errs <- fmt.Errorf("post-policy: unexpected answer %s", truncate(b, 300))
					next.Store(int64(cfg.n))
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	seen := make(map[string]bool, len(policies))
	for _, p := range policies {
		if seen[p.Key] {
			return nil, fmt.Errorf("post-policy gave the key %q twice", p.Key)
		}
		seen[p.Key] = true
	}
	return policies, nil
}

// formBody is the PostObject form: the policy's fields in its order, then
// the file, of random bytes so that every object differs.
func formBody(p policy, cfg loadConfig, i int) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range p.Fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, "", err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, strconv.Itoa(i)+"-"+cfg.filename))
	h.Set("Content-Type", cfg.fileType)
	fw, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	data := make([]byte, cfg.size)
	_, _ = rand.Read(data)
	_, _ = fw.Write(data)
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

func post(ctx context.Context, client *http.Client, target, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	if err != nil {
		return 0, answer, err
	}
	return resp.StatusCode, answer, nil
}

// settle waits until every stored object was delivered, or the app's
// counts stopped changing for cfg.settle, or cfg.maxSettle passed, and
// returns the counts under prefix.
func settle(ctx context.Context, cfg loadConfig, client *http.Client, prefix string, want int) (map[string]int, int, error) {
	deadline := time.Now().Add(cfg.maxSettle)
	var last countsAnswer
	lastTotal, stableSince := -1, time.Now()
	for {
		got, err := fetchCounts(ctx, cfg, client, prefix)
		if err != nil {
			return nil, 0, err
		}
		total := 0
		for _, n := range got.Counts {
			total += n
		}
		now := time.Now()
		if total != lastTotal {
			lastTotal, stableSince = total, now
		}
		last = got
		if len(got.Counts) >= want && now.Sub(stableSince) >= 200*time.Millisecond ||
			now.Sub(stableSince) >= cfg.settle || now.After(deadline) {
			return last.Counts, last.Verified, nil
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func fetchCounts(ctx context.Context, cfg loadConfig, client *http.Client, prefix string) (countsAnswer, error) {
	u := *cfg.appURL
	u.Path = "/__bench/counts"
	u.RawQuery = url.Values{"prefix": {prefix}}.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	resp, err := client.Do(req)
	if err != nil {
		return countsAnswer{}, fmt.Errorf("app counts: %v", err)
	}
	defer resp.Body.Close()
	var out countsAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return countsAnswer{}, fmt.Errorf("app counts: %d %v", resp.StatusCode, err)
	}
	return out, nil
}

// procTicks is utime + stime of a process, in clock ticks: fields 14 and
// 15 of /proc/<pid>/stat, counted after the ")" that ends the command name.
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading Caddy's CPU time: %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: cannot read utime and stime", pid)
	}
	return u + st, nil
}

type cpuTicks struct{ total, idle int64 }

// coreTicks reads every core's total and idle (idle + iowait) ticks from
// /proc/stat, by core number.
func coreTicks() ([]cpuTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	var out []cpuTicks
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n != len(out) {
			continue
		}
		var t cpuTicks
		for i := 1; i <= 8; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			t.total += v
			if i == 4 || i == 5 {
				t.idle += v
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
