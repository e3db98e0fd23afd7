package caddyoss

// The Uppy Companion routes through a running Caddy, ossemu and a
// recording app, following the requests @uppy/aws-s3 makes.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"

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
	env.config = testGlobal(t) + `
http://localhost:9080 {
	oss_upload {
		bucket ` + uppyBucket + `
		region cn-hangzhou
		endpoint ` + emu.Endpoint() + `
		upload_url ` + emu.BucketURL(uppyBucket) + `
		access_key_id uppy-ak
		access_key_secret uppy-secret
		signature_version ` + version + `
		key_prefix uploads/{http.request.header.X-User}/
		allow_types image/* application/octet-stream
		max_size ` + fmt.Sprint(uppyMaxSize) + `
		min_size 2
		callback {
			url http://localhost:9080/oss/callback
			var user {http.request.header.X-User}
			trusted_key ` + keyFile + `
		}
	}
	reverse_proxy ` + strings.TrimPrefix(env.app.URL, "http://") + `
}`
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
	if user != "" {
		req.Header.Set("X-User", user)
	}
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: %d answer is not {\"error\": ...}: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, string(b)
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

// TestUppyMultipart follows @uppy/aws-s3's multipart requests: create,
// sign and PUT each part, list, complete. The object holds the bytes, the
// app gets one verified callback, and Uppy gets location, key and bucket.
func TestUppyMultipart(t *testing.T) {
	for _, version := range []string{"v4", "v1"} {
		t.Run(version, func(t *testing.T) {
			env := newUppyEnv(t, version)
			up := env.create(t, "alice", "holiday photo.png", "image/png")
			if !strings.HasPrefix(up.Key, "uploads/alice/") || !strings.HasSuffix(up.Key, ".png") || up.Bucket != uppyBucket {
				t.Fatalf("create answered %+v", up)
			}
			data := [][]byte{randomBytes(partSize), randomBytes(partSize), randomBytes(17)}
			var parts []map[string]any
			for i, d := range data {
				etag := env.putPart(t, "alice", up, i+1, d)
				parts = append(parts, map[string]any{"PartNumber": i + 1, "ETag": etag})
			}
			var listed []uppyPart
			if status, body := env.call(t, "GET", up.path(""), "alice", nil, &listed); status != http.StatusOK || len(listed) != 3 {
				t.Fatalf("list: %d %s", status, body)
			}
			for i, p := range listed {
				if p.PartNumber != i+1 || p.Size != len(data[i]) || p.ETag != parts[i]["ETag"] {
					t.Errorf("listed part %d = %+v, uploaded %d bytes with ETag %v", i+1, p, len(data[i]), parts[i]["ETag"])
				}
			}
			// Uppy sends the parts in the order they finished.
			parts[0], parts[2] = parts[2], parts[0]
			var done struct {
				Location, Key, Bucket string
				Callback              map[string]any
			}
			if status, body := env.call(t, "POST", up.path("/complete"), "alice", map[string]any{"parts": parts}, &done); status != http.StatusOK {
				t.Fatalf("complete: %d %s", status, body)
			}
			if done.Key != up.Key || done.Bucket != uppyBucket || done.Location != env.emu.BucketURL(uppyBucket)+"/"+strings.ReplaceAll(up.Key, " ", "%20") {
				t.Errorf("complete answered %+v", done)
			}
			if done.Callback["ok"] != true {
				t.Errorf("complete's callback answer = %v, want the app's", done.Callback)
			}
			obj, ok := env.emu.Object(uppyBucket, up.Key)
			if !ok || !bytes.Equal(obj.Data, bytes.Join(data, nil)) {
				t.Fatalf("stored object differs (found %v)", ok)
			}
			if obj.ContentType != "image/png" {
				t.Errorf("stored type %q", obj.ContentType)
			}
			got := env.app.verified()
			if len(got) != 1 {
				t.Fatalf("app saw %d verified callbacks, want 1: %+v", len(got), env.app.all())
			}
			form := got[0].form()
			if form.Get("object") != up.Key || form.Get("size") != fmt.Sprint(2*partSize+17) || form.Get("user") != "alice" {
				t.Errorf("callback body %v", form)
			}
			if !strings.HasPrefix(form.Get(bindingVar), "2.k.") {
				t.Errorf("callback binding %q is not an exact-key binding", form.Get(bindingVar))
			}
		})
	}
}

// TestUppyParams: a small file goes by PostObject with the fields of
// GET /s3/params, file last, as Uppy sends it.
func TestUppyParams(t *testing.T) {
	env := newUppyEnv(t, "v4")
	var params struct {
		Method, URL string
		Fields      map[string]string
		Expires     int
	}
	status, body := env.call(t, "GET", "/params?filename=cat.png&type=image%2Fpng&metadata%5Bname%5D=cat.png", "bob", nil, &params)
	if status != http.StatusOK || params.Method != "POST" || params.URL != env.emu.BucketURL(uppyBucket)+"/" || params.Expires != 900 {
		t.Fatalf("params: %d %s", status, body)
	}
	key := params.Fields["key"]
	if !strings.HasPrefix(key, "uploads/bob/") {
		t.Fatalf("key %q", key)
	}
	var fields [][2]string
	for k, v := range params.Fields {
		fields = append(fields, [2]string{k, v})
	}
	data := randomBytes(1000)
	code, answer := env.postForm(t, params.URL, fields, "image/png", data)
	if code != http.StatusOK || !strings.Contains(answer, `"ok":true`) {
		t.Fatalf("PostObject: %d %s", code, answer)
	}
	if obj, ok := env.emu.Object(uppyBucket, key); !ok || !bytes.Equal(obj.Data, data) {
		t.Fatal("stored object differs")
	}
	if n := len(env.app.verified()); n != 1 {
		t.Errorf("app saw %d verified callbacks", n)
	}
	// Over max_size, OSS refuses the form and nothing is stored.
	status, _ = env.call(t, "GET", "/params?filename=big.png&type=image%2Fpng", "bob", nil, &params)
	if status != http.StatusOK {
		t.Fatal(status)
	}
	fields = fields[:0]
	for k, v := range params.Fields {
		fields = append(fields, [2]string{k, v})
	}
	if code, answer := env.postForm(t, params.URL, fields, "image/png", randomBytes(uppyMaxSize+1)); code != http.StatusBadRequest {
		t.Errorf("oversize PostObject: %d %s", code, answer)
	}
	if _, ok := env.emu.Object(uppyBucket, params.Fields["key"]); ok {
		t.Error("oversize object stored")
	}
}

// TestUppyLimits: what the routes refuse, each time with a JSON error,
// nothing stored, nothing left unfinished and nothing sent to the app.
func TestUppyLimits(t *testing.T) {
	env := newUppyEnv(t, "v4")

	// Over max_size at complete: aborted, 413.
	up := env.create(t, "alice", "big.bin", "application/octet-stream")
	var parts []map[string]any
	for n := 1; n <= 3; n++ {
		parts = append(parts, map[string]any{"PartNumber": n, "ETag": env.putPart(t, "alice", up, n, randomBytes(partSize))})
	}
	if status, body := env.call(t, "POST", up.path("/complete"), "alice", map[string]any{"parts": parts}, nil); status != http.StatusRequestEntityTooLarge {
		t.Errorf("complete over max_size: %d %s", status, body)
	}
	env.assertGone(t, up)
	// Claiming fewer parts does not help once aborted.
	if status, _ := env.call(t, "POST", up.path("/complete"), "alice", map[string]any{"parts": parts[:2]}, nil); status != http.StatusBadRequest && status != http.StatusNotFound {
		t.Errorf("complete after abort: %d", status)
	}

	// Under min_size.
	small := env.create(t, "alice", "tiny.bin", "application/octet-stream")
	etag := env.putPart(t, "alice", small, 1, []byte{1})
	if status, body := env.call(t, "POST", small.path("/complete"), "alice", map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": etag}}}, nil); status != http.StatusBadRequest {
		t.Errorf("complete under min_size: %d %s", status, body)
	}
	env.assertGone(t, small)

	// Types outside allow_types at create.
	for _, typ := range []string{"text/html", "application/pdf", "image", "", "Text/HTML; charset=utf-8"} {
		status, body := env.call(t, "POST", "/multipart", "alice", map[string]any{"filename": "x.html", "type": typ}, nil)
		if status != http.StatusBadRequest && status != http.StatusUnsupportedMediaType {
			t.Errorf("create type %q: %d %s", typ, status, body)
		}
	}
	// Bad bodies.
	for _, raw := range []string{"", "{", `{"filename": 1}`, `{"filename":"a"} {}`, "[]", strings.Repeat(" ", maxUppyBody+1) + "{}"} {
		req, _ := http.NewRequest("POST", "http://localhost:9080/oss/uppy/s3/multipart", strings.NewReader(raw))
		req.Header.Set("X-User", "alice")
		resp, err := env.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("create with body %.20q: %d", raw, resp.StatusCode)
		}
	}

	// Part numbers and part lists.
	live := env.create(t, "alice", "live.bin", "application/octet-stream")
	for _, n := range []string{"0", "10001", "-1", "abc", "1.5", "1e3"} {
		if status, body := env.call(t, "GET", "/multipart/"+url.PathEscape(live.UploadID)+"/"+n+"?key="+url.QueryEscape(live.Key), "alice", nil, nil); status != http.StatusBadRequest {
			t.Errorf("sign part %q: %d %s", n, status, body)
		}
	}
	e1 := env.putPart(t, "alice", live, 1, randomBytes(partSize))
	e2 := env.putPart(t, "alice", live, 2, randomBytes(10))
	for name, ps := range map[string][]map[string]any{
		"none":         {},
		"zero":         {{"PartNumber": 0, "ETag": e1}},
		"too high":     {{"PartNumber": 10001, "ETag": e1}},
		"twice":        {{"PartNumber": 1, "ETag": e1}, {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}},
		"no etag":      {{"PartNumber": 1}, {"PartNumber": 2, "ETag": e2}},
		"wrong etag":   {{"PartNumber": 1, "ETag": e2}, {"PartNumber": 2, "ETag": e2}},
		"not uploaded": {{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}},
		"too many":     manyParts(maxPartNumber + 1),
	} {
		if status, body := env.call(t, "POST", live.path("/complete"), "alice", map[string]any{"parts": ps}, nil); status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
			t.Errorf("complete with %s: %d %s", name, status, body)
		}
	}
	// A part below 100 KB before the last: OSS's EntityTooSmall, as a 400.
	odd := env.create(t, "alice", "odd.bin", "application/octet-stream")
	o1 := env.putPart(t, "alice", odd, 1, randomBytes(10))
	o2 := env.putPart(t, "alice", odd, 2, randomBytes(10))
	if status, body := env.call(t, "POST", odd.path("/complete"), "alice", map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": o1}, {"PartNumber": 2, "ETag": o2}}}, nil); status != http.StatusBadRequest || strings.Contains(body, "RequestId") {
		t.Errorf("complete with a small first part: %d %s", status, body)
	}
	// The live upload is still whole: the refused completes changed nothing.
	var listed []uppyPart
	if status, _ := env.call(t, "GET", live.path(""), "alice", nil, &listed); status != http.StatusOK || len(listed) != 2 {
		t.Errorf("live upload after refusals: %d, %d parts", status, len(listed))
	}
	// Methods.
	for _, m := range []struct{ method, path string }{
		{"POST", "/params"}, {"GET", "/multipart"}, {"PUT", live.path("")}, {"POST", live.path("")},
		{"GET", live.path("/complete")}, {"DELETE", live.path("/1")}, {"POST", live.path("/batch")},
	} {
		if status, body := env.call(t, m.method, m.path, "alice", nil, nil); status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d %s", m.method, m.path, status, body)
		}
	}
	for _, p := range []string{"/nope", "/sts", "/multipart/", "/multipart/x/1/2", "/multipart//1", "/multipart/x/"} {
		if status, body := env.call(t, "GET", p, "alice", nil, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", p, status, body)
		}
	}
	if n := len(env.app.all()); n != 0 {
		t.Errorf("the app received %d requests: %+v", n, env.app.all())
	}
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

// TestUppyForeignUploads: another user, or a forged key or upload id,
// cannot list, sign, complete or abort an upload. Every variant gets a
// JSON error, the upload stays whole and the app sees nothing.
func TestUppyForeignUploads(t *testing.T) {
	env := newUppyEnv(t, "v4")
	alice := env.create(t, "alice", "a.png", "image/png")
	a1 := env.putPart(t, "alice", alice, 1, randomBytes(partSize))
	mallory := env.create(t, "mallory", "m.png", "image/png")
	ossID, mac, _ := strings.Cut(alice.UploadID, ".")
	mOssID, mMac, _ := strings.Cut(mallory.UploadID, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}

	type target struct{ name, key, id string }
	targets := []target{
		{"alice's upload as mallory", alice.Key, alice.UploadID},
		{"alice's key, mallory's id", alice.Key, mallory.UploadID},
		{"mallory's key, alice's id", mallory.Key, alice.UploadID},
		{"mallory's key, alice's oss id with mallory's seal", mallory.Key, ossID + "." + mMac},
		{"mallory's key, mallory's oss id with alice's seal", mallory.Key, mOssID + "." + mac},
		{"raw oss id", mallory.Key, mOssID},
		{"flipped seal", mallory.Key, mOssID + "." + flip(mMac)},
		{"empty seal", mallory.Key, mOssID + "."},
		{"seal only", mallory.Key, "." + mMac},
		{"upper-cased seal", mallory.Key, mOssID + "." + strings.ToUpper(mMac)},
		{"no key", "", mallory.UploadID},
	}
	// Spellings of alice's key that a prefix check on text might let by.
	for _, k := range []string{
		"uploads/mallory/../alice/" + strings.TrimPrefix(alice.Key, "uploads/alice/"),
		"uploads/mallory/./" + strings.TrimPrefix(alice.Key, "uploads/"),
		"/" + alice.Key, "Uploads/alice/" + strings.TrimPrefix(alice.Key, "uploads/alice/"),
		"uploads/mallory//../../" + alice.Key, "uploads/mallory\\..\\alice",
		"uploads/mallory", "uploads/", "uploads/mallory/",
		"uploads/mallory/%2e%2e/alice/x", "uploads/mallory/\x00/x",
	} {
		targets = append(targets, target{"key " + k, k, mallory.UploadID}, target{"key " + k + " with alice's id", k, alice.UploadID})
	}
	etagJSON := map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": a1}}}
	for _, tg := range targets {
		query := url.Values{}
		if tg.key != "" {
			query.Set("key", tg.key)
		}
		q := "?" + query.Encode()
		query.Set("partNumbers", "1,2")
		base := "/multipart/" + url.PathEscape(tg.id)
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", base + q, nil},
			{"GET", base + "/1" + q, nil},
			{"GET", base + "/batch?" + query.Encode(), nil},
			{"POST", base + "/complete" + q, etagJSON},
			{"DELETE", base + q, nil},
		} {
			status, body := env.call(t, req.method, req.path, "mallory", req.body, nil)
			if status != http.StatusForbidden && status != http.StatusBadRequest {
				t.Errorf("%s: %s %s: %d %s", tg.name, req.method, req.path, status, body)
			}
			if strings.Contains(body, "http") {
				t.Errorf("%s: %s %s: the answer carries a URL: %s", tg.name, req.method, req.path, body)
			}
		}
	}
	// No user at all: the prefix cannot be expanded.
	if status, _ := env.call(t, "GET", alice.path(""), "", nil, nil); status != http.StatusForbidden {
		t.Errorf("no user: %d", status)
	}
	// Alice's upload is whole and hers to finish.
	var listed []uppyPart
	if status, _ := env.call(t, "GET", alice.path(""), "alice", nil, &listed); status != http.StatusOK || len(listed) != 1 || listed[0].ETag != a1 {
		t.Fatalf("alice's upload after the attempts: %d %+v", status, listed)
	}
	if status, body := env.call(t, "POST", alice.path("/complete"), "alice", etagJSON, nil); status != http.StatusOK {
		t.Fatalf("alice completes: %d %s", status, body)
	}
	if got := env.app.all(); len(got) != 1 || got[0].form().Get("user") != "alice" {
		t.Errorf("the app received %+v, want alice's one callback", got)
	}
	// Alice can abort her own upload; then it is gone.
	more := env.create(t, "alice", "b.png", "image/png")
	if status, body := env.call(t, "DELETE", more.path(""), "alice", nil, nil); status != http.StatusOK || strings.TrimSpace(body) != "{}" {
		t.Errorf("abort: %d %s", status, body)
	}
	env.assertGone(t, more)
	if status, _ := env.call(t, "DELETE", more.path(""), "alice", nil, nil); status != http.StatusNotFound {
		t.Errorf("second abort: %d", status)
	}
}

// TestUppyBatchAndPaging: the batch form signs each part once, and parts
// listed across ListParts pages all come back.
func TestUppyBatchAndPaging(t *testing.T) {
	env := newUppyEnv(t, "v1")
	up := env.create(t, "carol", "c.bin", "application/octet-stream")
	var batch struct{ PresignedUrls map[string]string }
	if status, body := env.call(t, "GET", up.path("/batch")+"&partNumbers=3,1,3,2", "carol", nil, &batch); status != http.StatusOK || len(batch.PresignedUrls) != 3 {
		t.Fatalf("batch: %d %s", status, body)
	}
	for n, u := range batch.PresignedUrls {
		pu, err := url.Parse(u)
		if err != nil || pu.Query().Get("partNumber") != n || pu.Query().Get("uploadId") != strings.SplitN(up.UploadID, ".", 2)[0] {
			t.Errorf("part %s URL %s", n, u)
		}
		req, _ := http.NewRequest("PUT", u, bytes.NewReader([]byte("part "+n)))
		resp, err := env.toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("PUT part %s: %d", n, resp.StatusCode)
		}
	}
	// 1005 parts span two ListParts pages.
	many := env.create(t, "carol", "many.bin", "application/octet-stream")
	ossID, _, _ := strings.Cut(many.UploadID, ".")
	imur := oss.InitiateMultipartUploadResult{Bucket: uppyBucket, Key: many.Key, UploadID: ossID}
	for n := 1; n <= 1005; n++ {
		if _, err := env.admin.UploadPart(imur, bytes.NewReader([]byte{byte(n)}), 1, n); err != nil {
			t.Fatal(err)
		}
	}
	var listed []uppyPart
	if status, body := env.call(t, "GET", many.path(""), "carol", nil, &listed); status != http.StatusOK || len(listed) != 1005 {
		t.Fatalf("list: %d, %d parts (%.200s)", status, len(listed), body)
	}
	for i, p := range listed {
		if p.PartNumber != i+1 {
			t.Fatalf("part %d listed as %d", i+1, p.PartNumber)
		}
	}
}

// TestUppyPathConfig: uppy_path in the Caddyfile and at provision, and
// which requests the routes take.
func TestUppyPathConfig(t *testing.T) {
	for _, tc := range []struct {
		block, wantErr string
	}{
		{"uppy_path /up", ""},
		{"uppy_path off", ""},
		{"uppy_path up", "must start with '/'"},
		{"uppy_path", "missing value"},
		{"uppy_path /a /b", "unexpected argument"},
		{"uppy_path /up\npresign_path /up/s3/params", "below uppy_path"},
	} {
		t.Run(tc.block, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\n" + tc.block + "\n}"))
			if err == nil {
				h.Bucket, h.Region, h.AccessKeyID, h.AccessKeySecret = "example-bucket", "cn-hangzhou", "id", "secret"
				h.PresignPath = routePath(h.PresignPath, defaultPresignPath, true)
				err = h.Validate()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}

	for _, tc := range []struct {
		uppyPath, path string
		ours           bool
	}{
		{"", "/oss/uppy/s3/params", true},
		{"", "/oss/uppy/s3/multipart/x/1", true},
		{"", "/oss/uppy/s3", false},
		{"", "/oss/uppy", false},
		{"", "/oss/uppy/s3x/params", false},
		{"", "/oss/uppy2/s3/params", false},
		{"/up/", "/up/s3/params", true},
		{"/up", "/up/s3/params", true},
		{"off", "/oss/uppy/s3/params", false},
		{"no policy route", "/oss/uppy/s3/params", false},
		{"/up, no policy route", "/up/s3/params", true},
	} {
		h := testHandler(t, func(h *Handler) {
			h.UppyPath = tc.uppyPath
			if p, ok := strings.CutSuffix(tc.uppyPath, ", no policy route"); ok || tc.uppyPath == "no policy route" {
				h.UppyPath, h.PolicyPath = p, routeOff
				if !ok {
					h.UppyPath = ""
				}
			}
		})
		nextRan := false
		next := handlerFunc(func(http.ResponseWriter, *http.Request) error { nextRan = true; return nil })
		req := withReplacer(httptest.NewRequest("POST", tc.path, nil))
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, req, next); err != nil {
			t.Fatal(err)
		}
		if nextRan == tc.ours {
			t.Errorf("uppy_path %q, %s: next ran %v", tc.uppyPath, tc.path, nextRan)
		}
		if tc.ours && rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
			t.Errorf("uppy_path %q, POST %s: %d %s", tc.uppyPath, tc.path, rec.Code, rec.Body)
		}
	}
}

// Instances sharing Caddy's storage open each other's upload ids; one with
// other storage does not.
func TestUppySealSharedByStorage(t *testing.T) {
	shared := &certmagic.FileStorage{Path: t.TempDir()}
	a := testHandler(t, func(h *Handler) { h.storage = shared })
	b := testHandler(t, func(h *Handler) { h.storage = shared })
	other := testHandler(t, nil)
	ctx := context.Background()
	sealed, err := a.sealUploadID(ctx, "u/k.bin", "0004B9894A22E5B1888A1E29F8236E2D")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := b.openUploadID(ctx, "u/k.bin", sealed); err != nil || id != "0004B9894A22E5B1888A1E29F8236E2D" {
		t.Errorf("the other instance opened %q, %v", id, err)
	}
	if _, err := b.openUploadID(ctx, "u/other.bin", sealed); err == nil {
		t.Error("an id sealed for one key opened for another")
	}
	if _, err := other.openUploadID(ctx, "u/k.bin", sealed); err == nil {
		t.Error("an instance with other storage opened the id")
	}
}

// TestUppySealSpellings: a sealed upload id opens only as issued. Every
// one-character change, removal or addition, padding, and the seal moved
// to another OSS id are refused; seals of many ids and keys open from one
// pool of MACs, concurrently.
func TestUppySealSpellings(t *testing.T) {
	h := testHandler(t, nil)
	ctx := context.Background()
	const key, ossID = "u/alice/k.bin", "0004B9894A22E5B1888A1E29F8236E2D"
	sealed, err := h.sealUploadID(ctx, key, ossID)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := h.openUploadID(ctx, key, sealed); err != nil || id != ossID {
		t.Fatalf("genuine: %q %v", id, err)
	}
	dot := strings.LastIndexByte(sealed, '.')
	variants := []string{sealed + "=", sealed + "==", sealed[:len(sealed)-1], sealed + "A", "." + sealed[dot+1:],
		ossID + "X" + sealed[dot:], ossID[1:] + sealed[dot:], ossID, sealed[dot+1:], strings.ToLower(sealed)}
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=."
	for i := dot + 1; i < len(sealed); i++ {
		for _, c := range alphabet {
			if byte(c) != sealed[i] {
				variants = append(variants, sealed[:i]+string(c)+sealed[i+1:])
			}
		}
		variants = append(variants, sealed[:i]+sealed[i+1:])
	}
	for _, v := range variants {
		if id, err := h.openUploadID(ctx, key, v); err == nil {
			t.Fatalf("%q opened as %q", v, id)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k, id := fmt.Sprintf("u/%d/%d.bin", g, i), fmt.Sprintf("%032X", g*1000+i)
				s, err := h.sealUploadID(ctx, k, id)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := h.openUploadID(ctx, k, s); err != nil || got != id {
					t.Errorf("%s: %q %v", k, got, err)
					return
				}
				if _, err := h.openUploadID(ctx, k+"x", s); err == nil {
					t.Errorf("%s: opened for another key", k)
					return
				}
			}
		}()
	}
	wg.Wait()
}
