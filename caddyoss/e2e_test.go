package caddyoss

// End to end with the emulator: a browser-like client asks Caddy for
// permission, uploads to ossemu, ossemu calls back through Caddy, which
// verifies the callback and forwards it to the app; the app's JSON comes
// back to the uploader.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// recordingApp is the legacy app behind Caddy: it records callbacks and
// answers JSON.
type recordingApp struct {
	*httptest.Server
	mu    sync.Mutex
	calls []appCall
}

type appCall struct {
	path     string
	verified string
	form     url.Values
}

func newRecordingApp(t *testing.T) *recordingApp {
	t.Helper()
	app := &recordingApp{}
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		app.mu.Lock()
		app.calls = append(app.calls, appCall{r.URL.Path, r.Header.Get("X-Oss-Callback-Verified"), form})
		n := len(app.calls)
		app.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"saved": form.Get("object"), "n": n})
	}))
	t.Cleanup(app.Close)
	return app
}

func (a *recordingApp) snapshot() []appCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]appCall(nil), a.calls...)
}

// loopbackClient dials every host (such as <bucket>.localhost) on the
// emulator's address, as a browser resolving *.localhost would.
func loopbackClient(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestEndToEndCallback(t *testing.T) {
	for _, version := range []string{"v4", "v1"} {
		t.Run(version, func(t *testing.T) { endToEnd(t, version) })
	}
}

func endToEnd(t *testing.T, version string) {
	emu, keyFile := startEmu(t, ossemu.Options{
		Buckets:    []string{"e2e-bucket"},
		AccessKeys: map[string]string{"e2e-ak": "e2e-secret"},
		Roles:      []ossemu.Role{{ARN: "acs:ram::1234567890123456:role/e2e-uploader"}},
	})
	app := newRecordingApp(t)

	tester := newTester(t)
	tester.InitServer(testGlobal(t)+`
http://localhost:9080 {
	oss_upload {
		bucket e2e-bucket
		region cn-hangzhou
		endpoint `+emu.Endpoint()+`
		upload_url `+emu.BucketURL("e2e-bucket")+`
		access_key_id e2e-ak
		access_key_secret e2e-secret
		signature_version `+version+`
		key_prefix uploads/
		max_size 1KB
		sts {
			role_arn acs:ram::1234567890123456:role/e2e-uploader
			endpoint `+emu.STSEndpoint()+`
			duration 15m
		}
		callback {
			url http://localhost:9080/oss/callback
			var user {http.request.header.X-User}
			trusted_key `+keyFile+`
		}
	}
	reverse_proxy `+strings.TrimPrefix(app.URL, "http://")+`
}`, "caddyfile")

	toOSS := loopbackClient(emu.Addr())
	getJSON := func(path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://localhost:9080"+path, nil)
		req.Header.Set("X-User", "eric")
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return out
	}
	checkDelivered := func(t *testing.T, uploaderStatus int, uploaderBody []byte, content string) {
		t.Helper()
		if uploaderStatus != 200 {
			t.Fatalf("uploader got %d %s", uploaderStatus, uploaderBody)
		}
		calls := app.snapshot()
		if len(calls) == 0 {
			t.Fatal("the app received no callback")
		}
		last := calls[len(calls)-1]
		var answer map[string]any
		if err := json.Unmarshal(uploaderBody, &answer); err != nil || answer["saved"] != last.form.Get("object") || answer["n"] != float64(len(calls)) {
			t.Fatalf("uploader got %s, want the app's answer to call %d (%v)", uploaderBody, len(calls), last.form)
		}
		if last.path != "/oss/callback" || last.verified != "true" || last.form.Get("bucket") != "e2e-bucket" ||
			last.form.Get("user") != "eric" || !strings.HasPrefix(last.form.Get("object"), "uploads/") {
			t.Fatalf("app received %+v", last)
		}
		obj, ok := emu.Object("e2e-bucket", last.form.Get("object"))
		if !ok || string(obj.Data) != content || last.form.Get("size") != itoa(len(content)) ||
			last.form.Get("etag") != strings.Trim(obj.ETag, `"`) {
			t.Fatalf("stored %q (ok %v), callback said %v", obj.Data, ok, last.form)
		}
	}

	// postForm sends the policy route's fields, then the file, to OSS.
	postForm := func(t *testing.T, p map[string]any, name string, data []byte) (int, []byte) {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range p["fields"].(map[string]any) {
			_ = mw.WriteField(k, v.(string))
		}
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write(data)
		_ = mw.Close()
		resp, err := toOSS.Post(p["url"].(string), mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	t.Run("PostObject", func(t *testing.T) {
		p := getJSON("/oss/post-policy?filename=note.txt&type=text/plain&size=11")
		status, body := postForm(t, p, "note.txt", []byte("hello world"))
		checkDelivered(t, status, body, "hello world")
	})

	t.Run("PresignedPUT", func(t *testing.T) {
		p := getJSON("/oss/presign?filename=data.bin&type=application/octet-stream")
		req, _ := http.NewRequest("PUT", p["url"].(string), strings.NewReader("presigned!"))
		for k, v := range p["headers"].(map[string]any) {
			req.Header.Set(k, v.(string))
		}
		resp, err := toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkDelivered(t, resp.StatusCode, body, "presigned!")
	})

	t.Run("STSWithSDK", func(t *testing.T) {
		c := getJSON("/oss/sts")
		client, err := oss.New(c["Endpoint"].(string), c["AccessKeyId"].(string), c["AccessKeySecret"].(string),
			oss.SecurityToken(c["SecurityToken"].(string)), oss.UseCname(true), oss.Region(c["Region"].(string)),
			oss.AuthVersion(map[string]oss.AuthVersionType{"v1": oss.AuthV1, "v4": oss.AuthV4}[version]), oss.HTTPClient(toOSS))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := client.Bucket(c["Bucket"].(string))
		headers := c["CallbackHeaders"].(map[string]any)
		var result []byte
		key := c["Prefix"].(string) + "sdk.txt"
		err = b.PutObject(key, strings.NewReader("via sts"), oss.Callback(headers["x-oss-callback"].(string)),
			oss.CallbackVar(headers["x-oss-callback-var"].(string)), oss.CallbackResult(&result))
		if err != nil {
			t.Fatalf("PutObject with the STS route's credentials: %v", err)
		}
		checkDelivered(t, 200, result, "via sts")
		// The session policy the plugin wrote keeps the client in its prefix.
		err = b.PutObject("elsewhere/x.txt", strings.NewReader("x"))
		var se oss.ServiceError
		if !errors.As(err, &se) || se.StatusCode != 403 || se.Code != "AccessDenied" {
			t.Fatalf("outside the prefix: %v", err)
		}
	})

	t.Run("RefusedByOSS", func(t *testing.T) {
		// Over max_size: OSS refuses, nothing is stored, nobody is called.
		before := len(app.snapshot())
		p := getJSON("/oss/post-policy?filename=big.txt&type=text/plain")
		status, body := postForm(t, p, "big.txt", bytes.Repeat([]byte("x"), 2000))
		if status != 400 || !strings.Contains(string(body), "EntityTooLarge") {
			t.Fatalf("%d %s", status, body)
		}
		if _, ok := emu.Object("e2e-bucket", p["key"].(string)); ok || len(app.snapshot()) != before {
			t.Fatal("a refused upload was stored or called back")
		}
	})

	t.Run("ForgedCallback", func(t *testing.T) {
		// The app never sees a callback that OSS did not sign.
		before := len(app.snapshot())
		req, _ := http.NewRequest("POST", "http://localhost:9080/oss/callback", strings.NewReader("bucket=e2e-bucket&object=uploads/x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AAAA")
		req.Header.Set("X-Oss-Pub-Key-Url", "aHR0cDovLzEyNy4wLjAuMTo5L2tleS5wZW0=")
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || len(app.snapshot()) != before {
			t.Fatalf("forged callback: %d, app calls %d -> %d", resp.StatusCode, before, len(app.snapshot()))
		}
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
