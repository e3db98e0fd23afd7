package caddyoss

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

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
