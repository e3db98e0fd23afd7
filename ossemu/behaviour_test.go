package ossemu_test

// What every request meets: CORS, the shape of error answers, and reads
// without a signature.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func TestCORS(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	resp := preflight(t, emu, "http://localhost:8080", "PUT", "Content-Type, x-oss-date")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8080" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
		resp.Header.Get("Access-Control-Allow-Headers") != "content-type, x-oss-date" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight(t, emu, "https://evil.example", "PUT", ""); resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %d", resp.StatusCode)
	}
	if resp := preflight(t, emu, "http://localhost:8080", "PATCH", ""); resp.StatusCode != 403 {
		t.Fatalf("method not allowed: %d", resp.StatusCode)
	}
	// Actual requests carry the CORS answer, errors included.
	req, _ := http.NewRequest("GET", emu.Endpoint()+"/"+testBucket+"/missing", nil)
	req.Header.Set("Origin", "http://127.0.0.1:3000")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:3000" || r2.StatusCode != 403 {
		t.Fatalf("actual request: %d %v", r2.StatusCode, r2.Header)
	}
}

func TestErrorShape(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	resp, err := http.Get(emu.Endpoint() + "/nosuchbucket/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Code, Message, RequestId, HostId string
	}
	if err := xmlUnmarshal(body, &e); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if resp.StatusCode != 404 || e.Code != "NoSuchBucket" || len(e.RequestId) != 24 || e.RequestId != resp.Header.Get("x-oss-request-id") || e.HostId == "" {
		t.Fatalf("%d %+v", resp.StatusCode, e)
	}
	// HEAD errors carry the XML in x-oss-err.
	b := ossBucket(t, emu, testAK, testSK)
	if _, err := b.GetObjectDetailedMeta("missing"); err == nil {
		t.Fatal("HEAD of a missing key succeeded")
	} else if st, _ := serviceCode(t, err); st != 404 {
		t.Fatalf("HEAD missing: %v", err)
	}
}

// TestAnonymousRead: buckets are private, so an unsigned GET or HEAD reads
// only objects whose ACL is public-read or public-read-write; default and
// private objects and missing keys answer 403 AccessDenied. Any signature
// present is checked, even on a public object, and public-read does not let
// anyone write.
func TestAnonymousRead(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK)
	if err := emu.PutObject(testBucket, "seeded", []byte("seed"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if obj, _ := emu.Object(testBucket, "seeded"); obj.ACL != "default" || obj.StorageClass != "Standard" {
		t.Fatalf("seeded object ACL %q class %q", obj.ACL, obj.StorageClass)
	}
	for _, acl := range []oss.ACLType{oss.ACLDefault, oss.ACLPrivate, oss.ACLPublicRead, oss.ACLPublicReadWrite} {
		if err := b.PutObject("acl/"+string(acl), strings.NewReader("body of "+string(acl)),
			oss.ObjectACL(acl), oss.ObjectStorageClass(oss.StorageIA)); err != nil {
			t.Fatalf("PutObject %s: %v", acl, err)
		}
	}
	objectURL := func(key string) string { return emu.Endpoint() + "/" + testBucket + "/" + key }
	for _, tc := range []struct {
		key    string
		public bool
	}{
		{"seeded", false}, {"missing", false},
		{"acl/default", false}, {"acl/private", false},
		{"acl/public-read", true}, {"acl/public-read-write", true},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			status, code, resp, body := rawRequest(t, method, objectURL(tc.key), nil, "")
			if !tc.public {
				if status != 403 || code != "AccessDenied" {
					t.Errorf("anonymous %s %s: %d %s, want 403 AccessDenied", method, tc.key, status, code)
				}
				continue
			}
			if status != 200 || resp.Header.Get("x-oss-storage-class") != "IA" || resp.Header.Get("x-oss-object-acl") != "" {
				t.Errorf("anonymous %s %s: %d %v", method, tc.key, status, resp.Header)
			}
			if method == http.MethodGet && body != "body of "+strings.TrimPrefix(tc.key, "acl/") {
				t.Errorf("anonymous GET %s: body %q", tc.key, body)
			}
		}
	}
	// Signed reads of private objects work as before.
	if rc, err := b.GetObject("acl/private"); err != nil {
		t.Fatalf("signed GET of a private object: %v", err)
	} else {
		rc.Close()
	}

	public := objectURL("acl/public-read")
	wrongKey, err := ossBucket(t, emu, testAK, "not-the-secret").SignURL("acl/public-read", oss.HTTPGet, 60)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		header    http.Header
		code      string
	}{
		{"URL signed with a wrong secret", wrongKey, nil, "SignatureDoesNotMatch"},
		{"V1 URL missing its Signature", public + "?OSSAccessKeyId=" + testAK + "&Expires=9999999999", nil, "AccessDenied"},
		{"V4 credential without signature", public + "?x-oss-credential=" + testAK + "%2F20250101%2Fcn-hangzhou%2Foss%2Faliyun_v4_request", nil, "AccessDenied"},
		{"bad Authorization header", public, http.Header{"Authorization": {"OSS " + testAK + ":bm9wZQ=="},
			"Date": {time.Now().UTC().Format(http.TimeFormat)}}, "SignatureDoesNotMatch"},
	} {
		if status, code, _, body := rawRequest(t, http.MethodGet, tc.url, tc.header, ""); status != 403 || code != tc.code {
			t.Errorf("%s on a public-read object: %d %s, want 403 %s", tc.name, status, body, tc.code)
		}
	}
	// public-read is read-only for anonymous users.
	if status, code, _, _ := rawRequest(t, http.MethodPut, public, nil, "overwritten"); status != 403 || code != "AccessDenied" {
		t.Errorf("anonymous PUT over a public-read object: %d %s", status, code)
	}
	if obj, _ := emu.Object(testBucket, "acl/public-read"); string(obj.Data) != "body of public-read" {
		t.Errorf("public-read object now holds %q", obj.Data)
	}
}
