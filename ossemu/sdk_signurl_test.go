package ossemu_test

// Presigned URLs made by aliyun-oss-go-sdk against the emulator: what they
// sign, and what an uploader may not add.

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func signedURLRoundTrip(t *testing.T, emu *ossemu.Emulator, b *oss.Bucket) {
	t.Helper()
	key := "signed/a b+c.txt"
	data := []byte("presigned bytes")
	putURL, err := b.SignURL(key, oss.HTTPPut, 60, oss.ContentType("text/plain"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PutObjectWithURL(putURL, bytes.NewReader(data), oss.ContentType("text/plain")); err != nil {
		t.Fatalf("PUT with signed URL: %v", err)
	}
	obj, ok := emu.Object(testBucket, key)
	if !ok || string(obj.Data) != string(data) || obj.ContentType != "text/plain" {
		t.Fatalf("stored %+v", obj)
	}
	getURL, err := b.SignURL(key, oss.HTTPGet, 60)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(getURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != string(data) {
		t.Fatalf("GET with signed URL: %d %q", resp.StatusCode, got)
	}
	// A different Content-Type than the one signed must not pass.
	req, _ := http.NewRequest(http.MethodPut, putURL, strings.NewReader("x"))
	req.Header.Set("Content-Type", "image/png")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>SignatureDoesNotMatch</Code>") {
		t.Fatalf("PUT with another Content-Type: %d %s", resp.StatusCode, body)
	}
}

func TestGoSDKSignURLV1(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	signedURLRoundTrip(t, emu, ossBucket(t, emu, testAK, testSK))
}

func TestGoSDKSignURLV4(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	signedURLRoundTrip(t, emu, ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4)))
}

// TestGoSDKSignURLUnsignedHeaders: a presigned PUT URL covers the x-oss-*
// headers it was signed with and no others. An uploader adding an unsigned
// x-oss-object-acl, x-oss-storage-class, x-oss-callback, x-oss-meta-* or
// x-oss-forbid-overwrite is refused; headers that were signed must be sent
// with the signed values.
func TestGoSDKSignURLUnsignedHeaders(t *testing.T) {
	for _, v := range authVersions {
		t.Run(v.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{})
			b := ossBucket(t, emu, testAK, testSK, v.opt)
			plain, err := b.SignURL("signed/plain.txt", oss.HTTPPut, 60)
			if err != nil {
				t.Fatal(err)
			}
			callback := base64.StdEncoding.EncodeToString([]byte(`{"callbackUrl":"http://127.0.0.1:1/","callbackBody":"o=${object}"}`))
			for _, h := range [][2]string{
				{"x-oss-object-acl", "public-read"},
				{"x-oss-storage-class", "IA"},
				{"x-oss-callback", callback},
				{"x-oss-meta-owner", "mallory"},
				{"x-oss-forbid-overwrite", "true"},
			} {
				status, code, _, body := rawRequest(t, http.MethodPut, plain, http.Header{http.CanonicalHeaderKey(h[0]): {h[1]}}, "x")
				if status != 403 || code != "SignatureDoesNotMatch" {
					t.Errorf("unsigned %s: %d %s", h[0], status, body)
				}
			}
			if _, ok := emu.Object(testBucket, "signed/plain.txt"); ok {
				t.Fatal("an upload with an unsigned x-oss-* header was stored")
			}
			if status, _, _, body := rawRequest(t, http.MethodPut, plain, nil, "x"); status != 200 {
				t.Fatalf("the URL as signed: %d %s", status, body)
			}

			signed, err := b.SignURL("signed/public.txt", oss.HTTPPut, 60,
				oss.ObjectACL(oss.ACLPublicRead), oss.ObjectStorageClass(oss.StorageIA))
			if err != nil {
				t.Fatal(err)
			}
			both := http.Header{"X-Oss-Object-Acl": {"public-read"}, "X-Oss-Storage-Class": {"IA"}}
			for _, tc := range []struct {
				name   string
				header http.Header
			}{
				{"signed headers left out", nil},
				{"only one signed header", http.Header{"X-Oss-Object-Acl": {"public-read"}}},
				{"another ACL", http.Header{"X-Oss-Object-Acl": {"public-read-write"}, "X-Oss-Storage-Class": {"IA"}}},
				{"an unsigned header besides", http.Header{"X-Oss-Object-Acl": {"public-read"}, "X-Oss-Storage-Class": {"IA"}, "X-Oss-Meta-Owner": {"mallory"}}},
			} {
				if status, code, _, body := rawRequest(t, http.MethodPut, signed, tc.header, "y"); status != 403 || code != "SignatureDoesNotMatch" {
					t.Errorf("%s: %d %s", tc.name, status, body)
				}
			}
			if status, _, _, body := rawRequest(t, http.MethodPut, signed, both, "y"); status != 200 {
				t.Fatalf("signed headers sent as signed: %d %s", status, body)
			}
			obj, _ := emu.Object(testBucket, "signed/public.txt")
			if obj.ACL != "public-read" || obj.StorageClass != "IA" || len(obj.Meta) != 0 {
				t.Fatalf("stored ACL %q class %q meta %v", obj.ACL, obj.StorageClass, obj.Meta)
			}
		})
	}
}
