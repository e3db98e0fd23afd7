package ossemu_test

// Fidelity tests: real client libraries that this project did not write,
// against the emulator.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// putGet stores data with the SDK, reads it back and checks the bytes and
// what the emulator holds. The SDK checks x-oss-hash-crc64ecma itself.
func putGet(t *testing.T, emu *ossemu.Emulator, b *oss.Bucket, key string) {
	t.Helper()
	data := randomBytes(t, 64<<10)
	if err := b.PutObject(key, bytes.NewReader(data), oss.ContentType("image/png"), oss.Meta("owner", "eric")); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	rc, err := b.GetObject(key)
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetObject returned %d bytes (err %v), want the %d put", len(got), err, len(data))
	}
	meta, err := b.GetObjectDetailedMeta(key)
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	if meta.Get("Content-Type") != "image/png" || meta.Get("X-Oss-Meta-Owner") != "eric" {
		t.Errorf("HeadObject headers = %v", meta)
	}
	obj, ok := emu.Object(testBucket, key)
	if !ok || !bytes.Equal(obj.Data, data) {
		t.Fatal("the emulator does not hold the bytes put")
	}
	if err := b.DeleteObject(key); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	if _, ok := emu.Object(testBucket, key); ok {
		t.Fatal("DeleteObject left the object")
	}
}

func TestGoSDKPutGetV1(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	putGet(t, emu, ossBucket(t, emu, testAK, testSK), "dir/photo 1+2.png")
}

func TestGoSDKPutGetV4(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	putGet(t, emu, ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4)), "dir/photo 1+2.png")
}

// TestGoSDKVirtualHosted sends requests to <bucket>.localhost:<port>.
func TestGoSDKVirtualHosted(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, emu.Addr())
		},
	}}
	client, err := oss.New("http://localhost:"+emu.Port(), testAK, testSK,
		oss.Region(emu.Region()), oss.AuthVersion(oss.AuthV4), oss.HTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := client.Bucket(testBucket)
	putGet(t, emu, b, "virtual/host.txt")
}

func multipartRoundTrip(t *testing.T, emu *ossemu.Emulator, b *oss.Bucket, key string) {
	t.Helper()
	data := randomBytes(t, 250<<10)
	imur, err := b.InitiateMultipartUpload(key, oss.ContentType("application/pdf"))
	if err != nil {
		t.Fatalf("InitiateMultipartUpload: %v", err)
	}
	parts := uploadParts(t, b, imur, data)
	listed, err := b.ListUploadedParts(imur)
	if err != nil || len(listed.UploadedParts) != 3 {
		t.Fatalf("ListUploadedParts: %v %+v", err, listed)
	}
	if _, err := b.CompleteMultipartUpload(imur, parts); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	obj, ok := emu.Object(testBucket, key)
	if !ok || !bytes.Equal(obj.Data, data) || obj.Type != "Multipart" || !strings.HasSuffix(obj.ETag, `-3"`) {
		t.Fatalf("stored object: ok=%v type=%s etag=%s len=%d", ok, obj.Type, obj.ETag, len(obj.Data))
	}
	rc, err := b.GetObject(key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("GetObject after multipart returned other bytes")
	}

	// Abort: the upload is gone afterwards.
	imur2, err := b.InitiateMultipartUpload(key + ".aborted")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AbortMultipartUpload(imur2); err != nil {
		t.Fatalf("AbortMultipartUpload: %v", err)
	}
	_, err = b.ListUploadedParts(imur2)
	if st, code := serviceCode(t, err); st != 404 || code != "NoSuchUpload" {
		t.Fatalf("ListParts after abort: %d %s", st, code)
	}
}

func TestGoSDKMultipartV1(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	multipartRoundTrip(t, emu, ossBucket(t, emu, testAK, testSK), "big/v1.pdf")
}

func TestGoSDKMultipartV4(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	multipartRoundTrip(t, emu, ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4)), "big/v4.pdf")
}

// TestGoSDKUploadFile drives the SDK's own concurrent upload manager.
func TestGoSDKUploadFile(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	data := randomBytes(t, 350<<10)
	path := t.TempDir() + "/file.bin"
	if err := writeFile(path, data); err != nil {
		t.Fatal(err)
	}
	if err := b.UploadFile("managed/file.bin", path, 100<<10, oss.Routines(3)); err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	obj, ok := emu.Object(testBucket, "managed/file.bin")
	if !ok || !bytes.Equal(obj.Data, data) {
		t.Fatal("UploadFile stored other bytes")
	}
}

func TestGoSDKSTSCredentials(t *testing.T) {
	for _, v := range authVersions {
		t.Run(v.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{})
			c := assumeRole(t, emu, sessionPolicy)
			b := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret),
				v.opt, oss.SecurityToken(tea.StringValue(c.SecurityToken)))
			data := []byte("uploaded with a security token")
			if err := b.PutObject("user/eric/a.txt", bytes.NewReader(data)); err != nil {
				t.Fatalf("PutObject with STS credentials: %v", err)
			}
			multipart := randomBytes(t, 120<<10)
			imur, err := b.InitiateMultipartUpload("user/eric/m.bin")
			if err != nil {
				t.Fatal(err)
			}
			p, err := b.UploadPart(imur, bytes.NewReader(multipart), int64(len(multipart)), 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{p}); err != nil {
				t.Fatalf("multipart with STS credentials: %v", err)
			}
			// Outside the session policy's prefix.
			err = b.PutObject("user/mallory/a.txt", bytes.NewReader(data))
			if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
				t.Fatalf("key outside the session policy: %d %s", st, code)
			}
			// An action the policy does not allow.
			err = b.DeleteObject("user/eric/a.txt")
			if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
				t.Fatalf("DeleteObject outside the session policy: %d %s", st, code)
			}
			// Without the token, the temporary key is unknown.
			noToken := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret), v.opt)
			err = noToken.PutObject("user/eric/b.txt", bytes.NewReader(data))
			if st, code := serviceCode(t, err); st != 403 || code != "InvalidAccessKeyId" {
				t.Fatalf("STS key without token: %d %s", st, code)
			}
			// Expired credentials are refused.
			emu.ExpireSessions()
			err = b.PutObject("user/eric/c.txt", bytes.NewReader(data))
			if st, code := serviceCode(t, err); st != 403 || code != "SecurityTokenExpired" {
				t.Fatalf("expired token: %d %s", st, code)
			}
		})
	}
}

func TestGoSDKListObjects(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1"} {
		if err := emu.PutObject(testBucket, k, []byte(k), "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(emu.Keys(testBucket), ","); got != "a/1,a/2,a/3,b/1" {
		t.Fatalf("Keys = %s", got)
	}
	b := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	res, err := b.ListObjects(oss.Prefix("a/"), oss.MaxKeys(2))
	if err != nil {
		t.Fatalf("ListObjects: %v", err)
	}
	if len(res.Objects) != 2 || res.Objects[0].Key != "a/1" || res.Objects[1].Key != "a/2" || !res.IsTruncated || res.Objects[0].Size != 3 {
		t.Fatalf("first page %+v", res)
	}
	res, err = b.ListObjects(oss.Prefix("a/"), oss.Marker(res.NextMarker))
	if err != nil || len(res.Objects) != 1 || res.Objects[0].Key != "a/3" || res.IsTruncated {
		t.Fatalf("second page %+v %v", res, err)
	}
	// An STS session allowed only to upload may not list.
	c := assumeRole(t, emu, sessionPolicy)
	sb := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret), oss.SecurityToken(tea.StringValue(c.SecurityToken)))
	_, err = sb.ListObjects()
	if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
		t.Fatalf("list without oss:ListObjects: %d %s", st, code)
	}
}

// TestGoSDKObjectACLAndStorageClass: ObjectACL and ObjectStorageClass on
// PutObject and InitiateMultipartUpload are stored (the multipart ones at
// completion), the storage class comes back on HEAD and in ListObjects, a
// public-read object can be fetched with a plain http.Get, and values
// outside OSS's lists are refused.
func TestGoSDKObjectACLAndStorageClass(t *testing.T) {
	for _, v := range authVersions {
		t.Run(v.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{})
			b := ossBucket(t, emu, testAK, testSK, v.opt)
			objectURL := func(key string) string { return emu.Endpoint() + "/" + testBucket + "/" + key }
			anonGet := func(key string) (int, string) {
				resp, err := http.Get(objectURL(key))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(body)
			}

			if err := b.PutObject("public/ia.txt", strings.NewReader("public bytes"),
				oss.ObjectACL(oss.ACLPublicRead), oss.ObjectStorageClass(oss.StorageIA)); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			obj, _ := emu.Object(testBucket, "public/ia.txt")
			if obj.ACL != "public-read" || obj.StorageClass != "IA" {
				t.Fatalf("stored ACL %q class %q", obj.ACL, obj.StorageClass)
			}
			meta, err := b.GetObjectDetailedMeta("public/ia.txt")
			if err != nil || meta.Get("X-Oss-Storage-Class") != "IA" {
				t.Fatalf("HeadObject: %v %v", err, meta)
			}
			if status, body := anonGet("public/ia.txt"); status != 200 || body != "public bytes" {
				t.Fatalf("anonymous GET of a public-read object: %d %q", status, body)
			}

			if err := b.PutObject("private/plain.txt", strings.NewReader("private bytes")); err != nil {
				t.Fatal(err)
			}
			if obj, _ := emu.Object(testBucket, "private/plain.txt"); obj.ACL != "default" || obj.StorageClass != "Standard" {
				t.Fatalf("without options: ACL %q class %q", obj.ACL, obj.StorageClass)
			}
			if status, _ := anonGet("private/plain.txt"); status != 403 {
				t.Fatalf("anonymous GET of a default-ACL object: %d", status)
			}

			for name, opt := range map[string]oss.Option{
				"acl":   oss.ObjectACL(oss.ACLType("authenticated-read")),
				"class": oss.ObjectStorageClass(oss.StorageClassType("Glacier")),
			} {
				err := b.PutObject("bad/"+name, strings.NewReader("x"), opt)
				if st, code := serviceCode(t, err); st != 400 || code != "InvalidArgument" {
					t.Errorf("PutObject with a bad %s: %d %s", name, st, code)
				}
				_, err = b.InitiateMultipartUpload("bad/mp-"+name, opt)
				if st, code := serviceCode(t, err); st != 400 || code != "InvalidArgument" {
					t.Errorf("InitiateMultipartUpload with a bad %s: %d %s", name, st, code)
				}
			}
			if keys := strings.Join(emu.Keys(testBucket), ","); strings.Contains(keys, "bad/") {
				t.Fatalf("refused uploads were stored: %s", keys)
			}

			imur, err := b.InitiateMultipartUpload("public/mp.bin",
				oss.ObjectACL(oss.ACLPublicReadWrite), oss.ObjectStorageClass(oss.StorageArchive))
			if err != nil {
				t.Fatal(err)
			}
			p, err := b.UploadPart(imur, strings.NewReader("one part"), 8, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{p}); err != nil {
				t.Fatal(err)
			}
			if obj, _ := emu.Object(testBucket, "public/mp.bin"); obj.ACL != "public-read-write" || obj.StorageClass != "Archive" {
				t.Fatalf("multipart: ACL %q class %q", obj.ACL, obj.StorageClass)
			}
			if status, body := anonGet("public/mp.bin"); status != 200 || body != "one part" {
				t.Fatalf("anonymous GET of a public-read-write multipart object: %d %q", status, body)
			}

			res, err := b.ListObjects(oss.Prefix("public/"))
			if err != nil || len(res.Objects) != 2 || res.Objects[0].StorageClass != "IA" || res.Objects[1].StorageClass != "Archive" {
				t.Fatalf("ListObjects: %v %+v", err, res.Objects)
			}
		})
	}
}
