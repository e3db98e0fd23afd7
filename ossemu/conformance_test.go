package ossemu_test

// Where OSS's behaviour is easy to get wrong: each test holds the emulator
// to what OSS does, through aliyun-oss-go-sdk or raw signed HTTP. The
// conformance_*_test.go files hold the rest by concern; this one the object
// operations: GET's response overrides, object names,
// x-oss-forbid-overwrite, and operations the emulator does not have.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// TestGetObjectResponseOverrides: response-* parameters of a signed GET
// set those headers of the answer (V1 and V4 URLs, and header-signed
// requests); an anonymous GET carrying one is refused, as OSS does not let
// anonymous readers choose response headers.
func TestGetObjectResponseOverrides(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	admin := ossBucket(t, emu, testAK, testSK)
	if err := admin.PutObject("pub/r.bin", strings.NewReader("a,b\n"), oss.ContentType("application/octet-stream"),
		oss.ObjectACL(oss.ACLPublicRead), oss.Meta("k", "v")); err != nil {
		t.Fatal(err)
	}
	overrides := []oss.Option{
		oss.ResponseContentType("text/csv"),
		oss.ResponseContentDisposition(`attachment; filename="r.csv"`),
		oss.ResponseCacheControl("no-cache"),
		oss.ResponseContentEncoding("identity"),
		oss.ResponseContentLanguage("en"),
		oss.ResponseExpires("Thu, 01 Dec 2044 16:00:00 GMT"),
	}
	want := map[string]string{
		"Content-Type": "text/csv", "Content-Disposition": `attachment; filename="r.csv"`, "Cache-Control": "no-cache",
		"Content-Encoding": "identity", "Content-Language": "en", "Expires": "Thu, 01 Dec 2044 16:00:00 GMT",
	}
	check := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != 200 || body != "a,b\n" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		for h, v := range want {
			if got := resp.Header.Get(h); got != v {
				t.Errorf("%s = %q, want %q", h, got, v)
			}
		}
		if resp.Header.Get("X-Oss-Meta-K") != "v" {
			t.Errorf("user metadata lost: %v", resp.Header)
		}
	}
	for _, v := range authVersions {
		t.Run("signed URL "+v.name, func(t *testing.T) {
			b := ossBucket(t, emu, testAK, testSK, v.opt)
			u, err := b.SignURL("pub/r.bin", oss.HTTPGet, 60, overrides...)
			if err != nil {
				t.Fatal(err)
			}
			_, _, resp, body := rawRequest(t, http.MethodGet, u, nil, "")
			check(t, resp, body)
			// The parameters are signed: another value does not pass.
			status, code, _, _ := rawRequest(t, http.MethodGet, strings.Replace(u, "text%2Fcsv", "text%2Fhtml", 1), nil, "")
			if status != 403 || code != "SignatureDoesNotMatch" {
				t.Fatalf("changed response-content-type: %d %s", status, code)
			}
		})
		t.Run("header signed "+v.name, func(t *testing.T) {
			b := ossBucket(t, emu, testAK, testSK, v.opt)
			var header http.Header
			rc, err := b.GetObject("pub/r.bin", append(overrides, oss.GetResponseHeader(&header))...)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			check(t, &http.Response{StatusCode: 200, Header: header}, string(data))
		})
	}
	for _, tc := range []struct {
		name   string
		query  string
		status int
		code   string
	}{
		{"anonymous without overrides", "", 200, ""},
		{"anonymous response-content-type", "?response-content-type=text%2Fhtml", 400, "InvalidRequest"},
		{"anonymous response-content-disposition", "?response-content-disposition=attachment", 400, "InvalidRequest"},
		{"anonymous response-expires", "?response-expires=0", 400, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code, resp, body := rawRequest(t, http.MethodGet, emu.Endpoint()+"/"+testBucket+"/pub/r.bin"+tc.query, nil, "")
			if status != tc.status || code != tc.code {
				t.Fatalf("%d %s %s", status, code, body)
			}
			if status == 200 && resp.Header.Get("Content-Type") != "application/octet-stream" {
				t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestInvalidObjectName: OSS names are 1 to 1023 bytes of UTF-8 not
// starting with / or \; any other name is 400 InvalidObjectName, whatever
// the operation, and nothing is stored.
func TestInvalidObjectName(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	longest := strings.Repeat("k", 1023)
	for _, tc := range []struct {
		name string
		key  string
		ok   bool
		ec   string
	}{
		{"1023 bytes", longest, true, ""},
		{"1023 bytes of multi-byte characters", strings.Repeat("é", 511) + "x", true, ""},
		{"1024 bytes", longest + "k", false, "0016-00000002"},
		{"1024 bytes of multi-byte characters", strings.Repeat("é", 512), false, "0016-00000002"},
		{"leading slash", "/lead.txt", false, "0016-00000005"},
		{"leading backslash", `\lead.txt`, false, "0016-00000005"},
		{"not UTF-8", "bad\xff.txt", false, "0016-00000002"},
		{"a slash inside", "in/side.txt", true, ""},
		{"a backslash inside", `in\side.txt`, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect := func(op string, err error) {
				t.Helper()
				if tc.ok {
					if err != nil {
						t.Fatalf("%s: %v", op, err)
					}
					return
				}
				var se oss.ServiceError
				if !errorsAs(err, &se) || se.StatusCode != 400 || se.Code != "InvalidObjectName" || se.Ec != tc.ec {
					t.Fatalf("%s: %v, want 400 InvalidObjectName %s", op, err, tc.ec)
				}
			}
			expect("PutObject", b.PutObject(tc.key, strings.NewReader("x")))
			_, err := b.InitiateMultipartUpload(tc.key)
			expect("InitiateMultipartUpload", err)

			if _, stored := emu.Object(testBucket, tc.key); stored != tc.ok {
				t.Fatalf("stored by PutObject = %v", stored)
			}
			fields := append(v1PostFields(t, map[string]any{"expiration": policyExpiring(), "conditions": []any{[]any{"content-length-range", 0, 10}}}),
				formField{"key", tc.key}, formField{"file", ""})
			resp, body := postObject(t, emu.Endpoint()+"/"+testBucket, fields, "f.txt", "text/plain", []byte("x"))
			switch {
			case tc.ok && resp.StatusCode != 204:
				t.Fatalf("PostObject: %d %s", resp.StatusCode, body)
			case !tc.ok && (resp.StatusCode != 400 || !strings.Contains(body, "<Code>InvalidObjectName</Code>")):
				t.Fatalf("PostObject: %d %s", resp.StatusCode, body)
			}
			if obj, stored := emu.Object(testBucket, tc.key); stored != tc.ok || (stored && len(obj.Data) != 1) {
				t.Fatalf("stored = %v", stored)
			}
		})
	}
	// ${filename} counts: the name after substitution is checked.
	fields := append(v1PostFields(t, map[string]any{"expiration": policyExpiring(), "conditions": []any{[]any{"starts-with", "$key", ""}}}),
		formField{"key", "${filename}"}, formField{"file", ""})
	resp, body := postObject(t, emu.Endpoint()+"/"+testBucket, fields, strings.Repeat("n", 1024), "text/plain", []byte("x"))
	if resp.StatusCode != 400 || !strings.Contains(body, "<Code>InvalidObjectName</Code>") {
		t.Fatalf("PostObject with a 1024-byte ${filename}: %d %s", resp.StatusCode, body)
	}
}

// TestForbidOverwrite: x-oss-forbid-overwrite: true makes PutObject,
// PostObject, InitiateMultipartUpload and CompleteMultipartUpload fail with
// 409 FileAlreadyExists when the key exists, leaving the object as it was.
func TestForbidOverwrite(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK)
	const existing = "keep/me.txt"
	seed := func(t *testing.T) {
		t.Helper()
		if err := emu.PutObject(testBucket, existing, []byte("original"), "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	onePart := func(t *testing.T, key string) (oss.InitiateMultipartUploadResult, []oss.UploadPart) {
		t.Helper()
		imur, err := b.InitiateMultipartUpload(key)
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.UploadPart(imur, strings.NewReader("replacement"), 11, 1)
		if err != nil {
			t.Fatal(err)
		}
		return imur, []oss.UploadPart{p}
	}
	post := func(forbid string) error {
		fields := append(v1PostFields(t, map[string]any{"expiration": policyExpiring(), "conditions": []any{[]any{"content-length-range", 0, 100}}}),
			formField{"key", existing}, formField{"x-oss-forbid-overwrite", forbid}, formField{"file", ""})
		resp, body := postObject(t, emu.Endpoint()+"/"+testBucket, fields, "f.txt", "text/plain", []byte("replacement"))
		if resp.StatusCode == 204 {
			return nil
		}
		var e struct{ Code, EC string }
		_ = xmlUnmarshal([]byte(body), &e)
		return oss.ServiceError{StatusCode: resp.StatusCode, Code: e.Code, Ec: e.EC}
	}
	for _, tc := range []struct {
		name     string
		forbid   bool
		upload   func(t *testing.T, forbid bool) error
		ec       string
		survives bool // the upload can still complete after a refused CompleteMultipartUpload
	}{
		{"PutObject", true, func(t *testing.T, forbid bool) error {
			return b.PutObject(existing, strings.NewReader("replacement"), oss.ForbidOverWrite(forbid))
		}, "", false},
		{"PostObject", true, func(t *testing.T, forbid bool) error { return post(fmt.Sprint(forbid)) }, "", false},
		{"InitiateMultipartUpload", true, func(t *testing.T, forbid bool) error {
			imur, err := b.InitiateMultipartUpload(existing, oss.ForbidOverWrite(forbid))
			if err != nil {
				return err
			}
			p, err := b.UploadPart(imur, strings.NewReader("replacement"), 11, 1)
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{p})
			return err
		}, "", false},
		{"CompleteMultipartUpload", true, func(t *testing.T, forbid bool) error {
			imur, parts := onePart(t, existing)
			_, err := b.CompleteMultipartUpload(imur, parts, oss.ForbidOverWrite(forbid))
			if err != nil {
				// The upload is still there: completing it without the
				// header replaces the object.
				if _, err2 := b.ListUploadedParts(imur); err2 != nil {
					t.Errorf("the upload is gone after a refused completion: %v", err2)
				}
			}
			return err
		}, "0042-00000214", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed(t)
			err := tc.upload(t, true)
			var se oss.ServiceError
			if !errorsAs(err, &se) || se.StatusCode != 409 || se.Code != "FileAlreadyExists" || (tc.ec != "" && se.Ec != tc.ec) {
				t.Fatalf("forbidden overwrite: %v", err)
			}
			if obj, _ := emu.Object(testBucket, existing); string(obj.Data) != "original" {
				t.Fatalf("object replaced: %q", obj.Data)
			}
			if err := tc.upload(t, false); err != nil {
				t.Fatalf("x-oss-forbid-overwrite: false: %v", err)
			}
			if obj, _ := emu.Object(testBucket, existing); string(obj.Data) != "replacement" {
				t.Fatalf("object not replaced: %q", obj.Data)
			}
			// A new key is written whatever the header says.
			fresh := "fresh/" + tc.name
			if tc.name == "PutObject" {
				if err := b.PutObject(fresh, strings.NewReader("new"), oss.ForbidOverWrite(true)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "CompleteMultipartUpload" || tc.name == "InitiateMultipartUpload" {
				imur, err := b.InitiateMultipartUpload(fresh, oss.ForbidOverWrite(true))
				if err != nil {
					t.Fatal(err)
				}
				p, err := b.UploadPart(imur, strings.NewReader("new"), 3, 1)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{p}, oss.ForbidOverWrite(true)); err != nil {
					t.Fatalf("a new key with x-oss-forbid-overwrite: %v", err)
				}
			}
		})
	}
}

// TestOperationsNotEmulated: a request for an operation the emulator does
// not have is 501 NotImplemented, never served as another operation: PUT
// ?acl does not overwrite the object, GET ?uploads does not list objects.
func TestOperationsNotEmulated(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK)
	if err := b.PutObject("keep.txt", strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"PutObjectACL", func() error { return b.SetObjectACL("keep.txt", oss.ACLPublicRead) }},
		{"GetObjectACL", func() error { _, err := b.GetObjectACL("keep.txt"); return err }},
		{"PutObjectTagging", func() error {
			return b.PutObjectTagging("keep.txt", oss.Tagging{Tags: []oss.Tag{{Key: "a", Value: "b"}}})
		}},
		{"AppendObject", func() error { _, err := b.AppendObject("keep.txt", strings.NewReader("more"), 4); return err }},
		{"PutSymlink", func() error { return b.PutSymlink("link.txt", "keep.txt") }},
		{"GetObjectMeta", func() error { _, err := b.GetObjectMeta("keep.txt"); return err }},
		{"RestoreObject", func() error { return b.RestoreObject("keep.txt") }},
		{"ListMultipartUploads", func() error { _, err := b.ListMultipartUploads(); return err }},
		{"ListObjectsV2", func() error { _, err := b.ListObjectsV2(); return err }},
		{"DeleteObjects", func() error { _, err := b.DeleteObjects([]string{"keep.txt"}); return err }},
		{"CopyObject", func() error { _, err := b.CopyObject("keep.txt", "copy.txt"); return err }},
		{"UploadPartCopy", func() error {
			imur, err := b.InitiateMultipartUpload("copy.bin")
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.UploadPartCopy(imur, testBucket, "keep.txt", 0, 4, 1)
			return err
		}},
		{"GetBucketACL", func() error { _, err := b.Client.GetBucketACL(testBucket); return err }},
		{"GetBucketLogging", func() error { _, err := b.Client.GetBucketLogging(testBucket); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, code := serviceCode(t, tc.run()); st != 501 || code != "NotImplemented" {
				t.Fatalf("%d %s, want 501 NotImplemented", st, code)
			}
		})
	}
	if obj, _ := emu.Object(testBucket, "keep.txt"); string(obj.Data) != "kept" || obj.ACL != "default" {
		t.Fatalf("the object changed: %q ACL %s", obj.Data, obj.ACL)
	}
	if keys := strings.Join(emu.Keys(testBucket), ","); keys != "keep.txt" {
		t.Fatalf("keys %s", keys)
	}
}
