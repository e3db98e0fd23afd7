package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// After uploads through the running sandbox (Caddy signs, the emulator
// stores and calls back), GET /demo/objects lists each object's key, size
// and type, and its URL serves the stored bytes with the stored type.
// Keys outside the sandbox's uploads, or with "." and ".." segments, are
// refused, through Caddy and at the demo app itself.
func TestSandboxObjects(t *testing.T) {
	sb, err := start(options{Listen: freeAddr(t), MaxSize: "1MB", AllowTypes: defaultTypes, Expires: "15m",
		SignatureVersion: "v4", AccessKeyID: "ak", AccessKeySecret: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	uploads := map[string]struct {
		typ  string
		data []byte
	}{}
	for _, f := range []struct {
		name, typ string
		size      int
	}{{"notes.txt", "text/plain", 1234}, {"photo.png", "image/png", 40 << 10}} {
		data := make([]byte, f.size)
		_, _ = rand.Read(data)
		q := url.Values{"filename": {f.name}, "type": {f.typ}, "size": {strconv.Itoa(f.size)}}
		code, _, body := get(t, sb.siteURL+"/oss/presign?"+q.Encode())
		var p struct {
			URL, Method, Key string
			Headers          map[string]string
		}
		if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
			t.Fatalf("presign: %d %s", code, body)
		}
		h := http.Header{}
		for k, v := range p.Headers {
			h.Set(k, v)
		}
		if code, _, answer := do(t, p.Method, p.URL, h, bytes.NewReader(data)); code != 200 || !strings.Contains(string(answer), `"ok":true`) {
			t.Fatalf("PUT %s: %d %s", f.name, code, answer)
		}
		uploads[p.Key] = struct {
			typ  string
			data []byte
		}{f.typ, data}
	}

	code, h, body := get(t, sb.siteURL+objectsPath)
	var list struct {
		Bucket, Prefix string
		Objects        []objectInfo
	}
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || h.Get("Content-Type") != "application/json" {
		t.Fatalf("list: %d %v %s", code, err, body)
	}
	if list.Bucket != bucketName || list.Prefix != keyPrefix || len(list.Objects) != len(uploads) {
		t.Fatalf("list: %s", body)
	}
	for _, o := range list.Objects {
		up, ok := uploads[o.Key]
		if !ok || o.Size != len(up.data) || o.Type != up.typ || o.URL != objectsPath+"/"+o.Key || o.ETag == "" {
			t.Errorf("listed %+v", o)
			continue
		}
		code, h, got := do(t, http.MethodGet, sb.siteURL+o.URL, nil, nil)
		if code != 200 || !bytes.Equal(got, up.data) || h.Get("Content-Type") != up.typ {
			t.Errorf("GET %s: %d, %s, %d bytes", o.URL, code, h.Get("Content-Type"), len(got))
		}
		if h.Get("Content-Security-Policy") != "sandbox" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", o.URL, h)
		}
	}

	for _, base := range []string{sb.siteURL, sb.app.URL} {
		for path, want := range map[string]int{
			objectsPath + "/uploads/missing.txt":               404,
			objectsPath + "/other/key.txt":                     400, // not an upload
			objectsPath + "/sandbox/uploads/key.txt":           400,
			objectsPath + "/uploads/../uploads/key.txt":        400,
			objectsPath + "/uploads/%2E%2E/%2e%2e/etc/passwd":  400,
			objectsPath + "/uploads/..%2F..%2Fother%2Fkey.txt": 400,
			objectsPath + "/uploads/./key.txt":                 400,
			objectsPath + "/uploads//key.txt":                  400,
			objectsPath + "/uploads/a%5C..%5Cb":                400,
			objectsPath + "/uploads/a%00b":                     400,
			objectsPath + "/":                                  400,
		} {
			code, _, body := get(t, base+path)
			if code != want {
				t.Errorf("GET %s%s: %d, want %d: %s", base, path, code, want, body)
			}
		}
	}
	if code, _, _ := do(t, http.MethodDelete, sb.siteURL+list.Objects[0].URL, nil, nil); code != 405 {
		t.Errorf("DELETE: %d", code)
	}
}

func TestSandboxObjectKeys(t *testing.T) {
	for key, ok := range map[string]bool{
		"uploads/3f2a9c.png": true, "uploads/a/b.txt": true, "uploads/名前.txt": true,
		"uploads/": false, "uploads": false, "other/a.txt": false, "/uploads/a": false, "uploads/../a": false,
		"uploads/a/..": false, "uploads/./a": false, "uploads//a": false, "uploads/a\\b": false, "uploads/a\x00": false,
		"uploads/a\x7f": false, "uploads/\xff": false, "uploads/" + strings.Repeat("a", 1020): false,
	} {
		if err := validKey(key); (err == nil) != ok {
			t.Errorf("validKey(%q) = %v", key, err)
		}
	}
}
