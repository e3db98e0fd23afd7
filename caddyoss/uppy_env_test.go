package caddyoss

// The Uppy Companion routes through a running Caddy, ossemu and a
// recording app, following the requests @uppy/aws-s3 makes.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

const (
	uppyBucket  = "uppy-bucket"
	uppyMaxSize = 250 << 10 // two 100 KiB parts fit, three do not
	partSize    = 100 << 10 // OSS's smallest part but the last
)

type uppyEnv struct {
	*secEnv
	admin *oss.Bucket // the emulator as the bucket owner sees it
}

// newUppyEnv runs Caddy with oss_upload (per-user key prefix, a callback,
// limits) in front of a recording app.
func newUppyEnv(t *testing.T, version string) *uppyEnv {
	t.Helper()
	emu, keyFile := startEmu(t, ossemu.Options{
		Buckets:    []string{uppyBucket},
		AccessKeys: map[string]string{"uppy-ak": "uppy-secret"},
	})
	env := &uppyEnv{secEnv: &secEnv{emu: emu, app: newSecApp(t), tester: newTester(t), toOSS: loopbackClient(emu.Addr())}}
	env.config = appSite(t, emu, uppyBucket, "uppy-ak", "uppy-secret", `
		signature_version `+version+`
		key_prefix uploads/{http.request.header.X-User}/
		allow_types image/* application/octet-stream
		max_size `+fmt.Sprint(uppyMaxSize)+`
		min_size 2
		callback {
			url http://localhost:9080/oss/callback
			var user {http.request.header.X-User}
			trusted_key `+keyFile+`
		}`, strings.TrimPrefix(env.app.URL, "http://"))
	env.tester.InitServer(env.config, "caddyfile")
	client, err := oss.New(emu.Endpoint(), "uppy-ak", "uppy-secret")
	if err != nil {
		t.Fatal(err)
	}
	if env.admin, err = client.Bucket(uppyBucket); err != nil {
		t.Fatal(err)
	}
	return env
}

// call sends a request to the Uppy routes as user and decodes the JSON
// answer into out (when not nil).
func (e *uppyEnv) call(t *testing.T, method, path, user string, body any, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://localhost:9080/oss/uppy/s3"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	status, b := e.ask(t, req, user)
	if out != nil && status == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if status != http.StatusOK {
		var e struct{ Error string }
		if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: %d answer is not {\"error\": ...}: %s", method, path, status, b)
		}
	}
	return status, string(b)
}

type uppyUpload struct {
	Key, UploadID, Bucket string
}

// create starts a multipart upload as user.
func (e *uppyEnv) create(t *testing.T, user, filename, typ string) uppyUpload {
	t.Helper()
	var up uppyUpload
	status, body := e.call(t, "POST", "/multipart", user,
		map[string]any{"filename": filename, "type": typ, "metadata": map[string]string{"name": filename}}, &up)
	if status != http.StatusOK || up.UploadID == "" || up.Key == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	return up
}

func (u uppyUpload) path(suffix string) string {
	return "/multipart/" + url.PathEscape(u.UploadID) + suffix + "?key=" + url.QueryEscape(u.Key)
}

// putPart uploads one part through a URL signed by the part route and
// returns its ETag.
func (e *uppyEnv) putPart(t *testing.T, user string, up uppyUpload, n int, data []byte) string {
	t.Helper()
	var signed struct {
		URL     string
		Expires int
	}
	if status, body := e.call(t, "GET", up.path(fmt.Sprintf("/%d", n)), user, nil, &signed); status != http.StatusOK {
		t.Fatalf("sign part %d: %d %s", n, status, body)
	}
	if signed.Expires != 900 {
		t.Errorf("expires = %d, want 900", signed.Expires)
	}
	req, _ := http.NewRequest("PUT", signed.URL, bytes.NewReader(data))
	resp, err := e.toOSS.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT part %d: %d %s", n, resp.StatusCode, b)
	}
	return resp.Header.Get("ETag")
}

type uppyPart struct {
	PartNumber int
	ETag       string
	Size       int
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func manyParts(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"PartNumber": i%maxPartNumber + 1, "ETag": "x"}
	}
	return out
}

// assertGone checks that an upload was aborted and left no object.
func (e *uppyEnv) assertGone(t *testing.T, up uppyUpload) {
	t.Helper()
	ossID, _, _ := strings.Cut(up.UploadID, ".")
	_, err := e.admin.ListUploadedParts(oss.InitiateMultipartUploadResult{Bucket: uppyBucket, Key: up.Key, UploadID: ossID})
	if code, _ := ossErrorCode(err); code != "NoSuchUpload" {
		t.Errorf("upload %s still listed after refusal (err %v)", up.Key, err)
	}
	if _, ok := e.emu.Object(uppyBucket, up.Key); ok {
		t.Errorf("object %s stored after refusal", up.Key)
	}
}
