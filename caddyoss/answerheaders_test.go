package caddyoss

// Answers never share mutable state across requests: four sites in one
// Caddy, two of which rewrite the plugin's answer headers in place with
// Caddy's own header directive (deferred replacements) and compress them
// with encode, are asked every route and answer kind many times at once.
// Every answer of every site must carry exactly its documented headers, and
// a cached answer (STS) must come back byte for byte the same.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

const headerSiteRole = "acs:ram::1234567890123456:role/header-uploader"

// headerSite is one site of the test: its port, signature version, and
// whether it rewrites answer headers.
type headerSite struct {
	port     int
	version  string
	rewrites bool
}

func (s headerSite) base() string { return "http://localhost:" + strconv.Itoa(s.port) }

// want is the exact value a header of this site's answers must have.
func (s headerSite) want(field, plain string) string {
	if !s.rewrites {
		return plain
	}
	switch field {
	case "Content-Type":
		plain = strings.Replace(plain, "application/json", "application/json; charset=utf-8", 1)
		return strings.Replace(plain, "text/plain", "text/plain; format=url", 1)
	case "Cache-Control":
		return strings.Replace(plain, "no-store", "no-store, private", 1)
	case "Vary":
		return strings.Replace(plain, "Accept", "Accept, Origin", 1)
	}
	return plain
}

// headerProbe is one request of the test and the headers its answer must
// have on a site that rewrites nothing.
type headerProbe struct {
	name, method, path, accept, body string
	status                           int
	contentType, vary                string
}

func TestAnswerHeadersNotShared(t *testing.T) {
	emu, _ := startEmu(t, ossemu.Options{
		Buckets:    []string{"header-bucket"},
		AccessKeys: map[string]string{"header-ak": "header-secret"},
		Roles:      []ossemu.Role{{ARN: headerSiteRole}},
	})
	sites := []headerSite{{9080, "v4", true}, {9081, "v1", true}, {9082, "v4", false}, {9083, "v1", false}}
	var config strings.Builder
	config.WriteString(testGlobal(t))
	for _, s := range sites {
		rewrite := ""
		if s.rewrites {
			rewrite = `
	encode gzip
	header >Content-Type "application/json" "application/json; charset=utf-8"
	header >Content-Type "text/plain" "text/plain; format=url"
	header >Cache-Control "no-store" "no-store, private"
	header >Vary "Accept" "Accept, Origin"`
		}
		fmt.Fprintf(&config, `
%s {%s
	oss_upload {
		bucket header-bucket
		region cn-hangzhou
		endpoint %s
		upload_url %s
		access_key_id header-ak
		access_key_secret header-secret
		signature_version %s
		key_prefix uploads/{http.request.header.X-User}/
		allow_types image/*
		sts {
			role_arn %s
			endpoint %s
		}
	}
	respond "not an upload route" 404
}
`, s.base(), rewrite, emu.Endpoint(), emu.BucketURL("header-bucket"), s.version, headerSiteRole, emu.STSEndpoint())
	}
	tester := newTester(t)
	tester.InitServer(config.String(), "caddyfile")

	const jsonType = "application/json"
	probes := []headerProbe{
		{name: "post-policy", method: "GET", path: "/oss/post-policy?filename=a.png&type=image/png", status: 200, contentType: jsonType},
		{name: "presign json", method: "GET", path: "/oss/presign?filename=a.png&type=image/png", status: 200, contentType: jsonType, vary: "Accept"},
		{name: "presign url", method: "GET", path: "/oss/presign?filename=a.png&type=image/png", accept: "text/plain",
			status: 200, contentType: "text/plain; charset=utf-8", vary: "Accept"},
		{name: "sts", method: "GET", path: "/oss/sts", status: 200, contentType: jsonType},
		{name: "uppy params", method: "GET", path: "/oss/uppy/s3/params?filename=a.png&type=image/png", status: 200, contentType: jsonType},
		{name: "uppy create", method: "POST", path: "/oss/uppy/s3/multipart", body: `{"filename":"a.png","type":"image/png"}`,
			status: 200, contentType: jsonType},
		{name: "refused type", method: "GET", path: "/oss/post-policy?filename=a.exe&type=application/x-msdownload", status: 400, contentType: jsonType},
		{name: "presign refused", method: "GET", path: "/oss/presign?filename=a.exe&type=application/x-msdownload", status: 400, contentType: jsonType},
		{name: "callback off", method: "POST", path: "/oss/callback", status: 404},
		{name: "wrong method", method: "DELETE", path: "/oss/post-policy", status: 405, contentType: jsonType},
	}
	// Uppy's per-upload routes need an upload of each site's own.
	uppyProbes := func(up uppyUpload) []headerProbe {
		return []headerProbe{
			{name: "uppy list", method: "GET", path: "/oss/uppy/s3" + up.path(""), status: 200, contentType: jsonType},
			{name: "uppy sign", method: "GET", path: "/oss/uppy/s3" + up.path("/1"), status: 200, contentType: jsonType},
			{name: "uppy batch", method: "GET", path: "/oss/uppy/s3" + up.path("/batch") + "&partNumbers=1,2", status: 200, contentType: jsonType},
			{name: "uppy bad part", method: "GET", path: "/oss/uppy/s3" + up.path("/0"), status: 400, contentType: jsonType},
		}
	}

	const rounds = 25
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stsBody  = map[string]string{} // site → the first STS answer
		failures int
	)
	for _, s := range sites {
		var created uppyUpload
		if err := json.Unmarshal([]byte(headerCall(t, tester.Client, s, headerProbe{method: "POST", path: "/oss/uppy/s3/multipart",
			body: `{"filename":"c.png","type":"image/png"}`})), &created); err != nil {
			t.Fatal(err)
		}
		siteProbes := append(append([]headerProbe(nil), probes...), uppyProbes(created)...)
		for worker := 0; worker < 3; worker++ {
			wg.Add(1)
			go func(s headerSite) {
				defer wg.Done()
				for round := 0; round < rounds; round++ {
					for _, p := range siteProbes {
						resp, body, err := headerDo(tester.Client, s, p)
						if err != nil {
							t.Errorf("%s %s: %v", s.base(), p.name, err)
							return
						}
						problems := headerProblems(s, p, resp, body)
						if p.name == "sts" {
							mu.Lock()
							if first, ok := stsBody[s.base()]; !ok {
								stsBody[s.base()] = body
							} else if first != body {
								problems = append(problems, "the cached STS answer changed")
							}
							mu.Unlock()
						}
						if len(problems) > 0 {
							mu.Lock()
							failures++
							if failures <= 10 {
								t.Errorf("%s (%s, rewrites %v) %s, round %d: %s", s.base(), s.version, s.rewrites,
									p.name, round, strings.Join(problems, "; "))
							}
							mu.Unlock()
						}
					}
				}
			}(s)
		}
	}
	wg.Wait()
	if failures > 10 {
		t.Errorf("%d answers in all had wrong headers", failures)
	}
}

// headerProblems lists what is wrong with the headers of an answer.
func headerProblems(s headerSite, p headerProbe, resp *http.Response, body string) []string {
	var problems []string
	if resp.StatusCode != p.status {
		problems = append(problems, fmt.Sprintf("status %d, want %d (%s)", resp.StatusCode, p.status, body))
	}
	if p.contentType == "" { // not an answer of the plugin's
		return problems
	}
	exact := func(field, plain string) {
		got := resp.Header.Values(field)
		if want := s.want(field, plain); len(got) != 1 || got[0] != want {
			problems = append(problems, fmt.Sprintf("%s %q, want exactly %q", field, got, want))
		}
	}
	exact("Content-Type", p.contentType)
	exact("Cache-Control", "no-store")
	if p.vary != "" {
		exact("Vary", p.vary)
	}
	if !s.rewrites { // encode drops Content-Length for what it compresses
		exact("Content-Length", strconv.Itoa(len(body)))
	}
	return problems
}

// headerDo sends a probe to a site as user alice, accepting gzip (which
// the rewriting sites use), and returns the answer and its decoded body.
func headerDo(c *http.Client, s headerSite, p headerProbe) (*http.Response, string, error) {
	var rd io.Reader
	if p.body != "" {
		rd = strings.NewReader(p.body)
	}
	req, err := http.NewRequest(p.method, s.base()+p.path, rd)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("X-User", "alice")
	req.Header.Set("Accept-Encoding", "gzip")
	if p.accept != "" {
		req.Header.Set("Accept", p.accept)
	}
	if p.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, "", err
		}
		if b, err = io.ReadAll(zr); err != nil {
			return nil, "", err
		}
	}
	return resp, string(b), nil
}

func headerCall(t *testing.T, c *http.Client, s headerSite, p headerProbe) string {
	t.Helper()
	resp, body, err := headerDo(c, s, p)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s %s: %v %s", s.base(), p.method, p.path, err, body)
	}
	return body
}
