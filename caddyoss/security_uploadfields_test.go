package caddyoss

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// 5 and 6. Whatever a PostObject uploader adds to the fields it was given,
// the object is stored at the issued key, with an allowed type, the
// bucket's ACL and the pinned storage class, and the app hears only
// callbacks with the issued variables.
func TestSecurityPostObjectExtraFields(t *testing.T) {
	env := newSecEnv(t, "")
	attackerCb := b64JSON(map[string]string{"callbackUrl": "http://127.0.0.1:9/cb", "callbackBody": "object=${object}"})
	extras := [][2]string{
		{"x-oss-content-type", "text/html"}, {"X-OSS-Content-Type", "text/html"}, {"Content-Type", "text/html"},
		{"content-type", "application/pdf"},
		{"x-oss-object-acl", "public-read"}, {"x-oss-object-acl", "public-read-write"}, {"X-Oss-Object-Acl", "private"},
		{"x-oss-storage-class", "IA"}, {"x-oss-storage-class", "Archive"}, {"X-OSS-STORAGE-CLASS", "ColdArchive"},
		{"callback", attackerCb}, {"x:user", "bob"}, {"X:user", "bob"}, {"x:admin", "1"},
		{"key", "index.html"}, {"key", "uploads/alice/other.html"}, {"key", "uploads/bob/x.png"}, {"KEY", "index.html"},
		{"success_action_status", "201"}, {"x-oss-forbid-overwrite", "true"},
		{"x-oss-server-side-encryption", "AES256"}, {"x-oss-meta-owner", "bob"}, {"Cache-Control", "public"},
		{"Content-Disposition", "inline"}, {"Content-Encoding", "gzip"}, {"Expires", "0"},
		{"success_action_redirect", "http://127.0.0.1:9/"}, {"x-oss-security-token", "forged"},
	}
	// The post-policy route and Uppy's params route sign the same policy;
	// each answers its own shape.
	sources := []struct{ name, path string }{
		{"post-policy", "/oss/post-policy?filename=a.png&type=image/png&size=4"},
		{"uppy params", "/oss/uppy/s3/params?filename=a.png&type=image/png&metadata%5Bname%5D=a.png"},
	}
	for _, src := range sources {
		for _, extra := range extras {
			for _, before := range []bool{true, false} {
				name := fmt.Sprintf("%s: %s=%s before=%v", src.name, extra[0], extra[1], before)
				_, p, _ := env.get(t, src.path, "alice")
				issued := p["fields"].(map[string]any)
				var fields [][2]string
				order := []string{"key", "policy", "x-oss-signature-version", "x-oss-credential", "x-oss-date", "x-oss-signature",
					"success_action_status", "Content-Type", "x-oss-content-type", "x-oss-object-acl", "x-oss-storage-class",
					"callback", "x:oss_binding", "x:user"}
				if before {
					fields = append(fields, extra)
				}
				for _, k := range order {
					if v, ok := issued[k]; ok {
						fields = append(fields, [2]string{k, v.(string)})
					}
				}
				if len(fields) != len(issued)+map[bool]int{true: 1}[before] {
					t.Fatalf("issued fields changed: %v", issued)
				}
				if !before {
					fields = append(fields, extra)
				}
				status, body := env.postForm(t, p["url"].(string), fields, "image/png", []byte("png!"))
				key := issued["key"].(string)
				obj, stored := env.emu.Object(secBucket, key)
				if stored && (obj.ContentType != "image/png" || obj.ACL != "default" || obj.StorageClass != "Standard") {
					t.Errorf("%s: stored as %s, ACL %s, class %s (%d %s)", name, obj.ContentType, obj.ACL, obj.StorageClass, status, body)
				}
				if !stored && status < 400 {
					t.Errorf("%s: %d %s but nothing stored at the issued key", name, status, body)
				}
			}
		}
	}
	for _, k := range env.emu.Keys(secBucket) {
		if !strings.HasPrefix(k, "uploads/alice/") || strings.HasSuffix(k, ".html") {
			t.Errorf("an object was stored at %q", k)
		}
	}
	for _, r := range env.app.verified() {
		if f := r.form(); f.Get("user") != "alice" || f.Get("mimeType") != "image/png" || f.Get("admin") != "" ||
			!strings.HasPrefix(f.Get("object"), "uploads/alice/") {
			t.Errorf("the app received %s", r.body)
		}
	}
	if len(env.app.verified()) == 0 {
		t.Error("no upload went through at all: the test proves nothing")
	}
	// Presigned PUT: headers the URL did not sign are refused by OSS.
	for _, extra := range [][2]string{{"x-oss-object-acl", "public-read"}, {"x-oss-storage-class", "IA"},
		{"x-oss-callback", attackerCb}, {"Content-Type", "text/html"}, {"x-oss-forbid-overwrite", "true"}} {
		_, p, _ := env.get(t, "/oss/presign?filename=a.png&type=image/png", "alice")
		req, _ := http.NewRequest("PUT", p["url"].(string), strings.NewReader("png!"))
		req.Header.Set("Content-Type", "image/png")
		req.Header.Set(extra[0], extra[1])
		resp, err := env.toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, stored := env.emu.Object(secBucket, p["key"].(string)); resp.StatusCode != 403 || stored {
			t.Errorf("presign with %s: %d, stored %v", extra[0], resp.StatusCode, stored)
		}
	}
	// Uppy's part URLs sign no header: any the uploader adds is refused,
	// and the upload gets no part.
	req, _ := http.NewRequest("POST", "http://localhost:9080/oss/uppy/s3/multipart", strings.NewReader(`{"filename":"a.png","type":"image/png"}`))
	req.Header.Set("X-User", "alice")
	resp, err := env.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ Key, UploadID string }
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || resp.StatusCode != 200 {
		t.Fatalf("uppy create: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	for _, extra := range [][2]string{{"x-oss-object-acl", "public-read"}, {"x-oss-storage-class", "IA"},
		{"x-oss-callback", attackerCb}, {"Content-Type", "text/html"}, {"x-oss-forbid-overwrite", "true"},
		{"x-oss-server-side-encryption", "AES256"}} {
		_, p, _ := env.get(t, "/oss/uppy/s3/multipart/"+url.PathEscape(up.UploadID)+"/1?key="+url.QueryEscape(up.Key), "alice")
		req, _ := http.NewRequest("PUT", p["url"].(string), strings.NewReader("part"))
		req.Header.Set(extra[0], extra[1])
		resp, err := env.toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("uppy part with %s: %d", extra[0], resp.StatusCode)
		}
	}
	var parts []map[string]any
	if status, _, body := env.get(t, "/oss/uppy/s3/multipart/"+url.PathEscape(up.UploadID)+"?key="+url.QueryEscape(up.Key), "alice"); status != 200 ||
		json.Unmarshal([]byte(body), &parts) != nil || len(parts) != 0 {
		t.Errorf("the upload got parts: %d %s", status, body)
	}
}
