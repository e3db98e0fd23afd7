package ossemu_test

// Multipart uploads: ListParts paging, aborted uploads, and parts sent
// through presigned URLs.

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// upload5 starts a multipart upload of key and uploads parts 1 to 5.
func upload5(t *testing.T, b *oss.Bucket, key string) oss.InitiateMultipartUploadResult {
	t.Helper()
	imur, err := b.InitiateMultipartUpload(key)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 5; n++ {
		if _, err := b.UploadPart(imur, strings.NewReader("part "+itoa(n)), 6, n); err != nil {
			t.Fatal(err)
		}
	}
	return imur
}

// TestListPartsPaging: max-parts and part-number-marker page through the
// parts with IsTruncated and NextPartNumberMarker, as OSS does; the key
// comes back url-encoded when asked (the SDK always asks).
func TestListPartsPaging(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	const key = "up/a b+c%.bin"
	imur := upload5(t, b, key)
	type page struct {
		parts     string
		truncated bool
		next      string
		max       int
	}
	for _, tc := range []struct {
		name   string
		max    int // 0: not sent
		marker int
		pages  []page
	}{
		{"all", 0, 0, []page{{"1,2,3,4,5", false, "5", 1000}}},
		{"pages of two", 2, 0, []page{{"1,2", true, "2", 2}, {"3,4", true, "4", 2}, {"5", false, "5", 2}}},
		{"pages of five", 5, 0, []page{{"1,2,3,4,5", false, "5", 5}}},
		{"from a marker", 0, 3, []page{{"4,5", false, "5", 1000}}},
		{"from a marker, pages of one", 1, 3, []page{{"4", true, "4", 1}, {"5", false, "5", 1}}},
		{"past the last part", 0, 5, []page{{"", false, "0", 1000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := tc.marker
			for i, want := range tc.pages {
				var opts []oss.Option
				if tc.max > 0 {
					opts = append(opts, oss.MaxParts(tc.max))
				}
				if marker > 0 {
					opts = append(opts, oss.PartNumberMarker(marker))
				}
				res, err := b.ListUploadedParts(imur, opts...)
				if err != nil {
					t.Fatalf("page %d: %v", i, err)
				}
				var nums []string
				for _, p := range res.UploadedParts {
					nums = append(nums, itoa(p.PartNumber))
				}
				got := page{strings.Join(nums, ","), res.IsTruncated, res.NextPartNumberMarker, res.MaxParts}
				if got != want || res.Key != key {
					t.Fatalf("page %d: %+v key %q, want %+v key %q", i, got, res.Key, want, key)
				}
				marker = atoiOr(t, res.NextPartNumberMarker)
			}
		})
	}
	for _, q := range [][2]string{{"max-parts", "0"}, {"max-parts", "1001"}, {"max-parts", "x"}, {"part-number-marker", "-1"}, {"part-number-marker", "x"}} {
		u, err := b.SignURL(key, oss.HTTPGet, 60, oss.AddParam("uploadId", imur.UploadID), oss.AddParam(q[0], q[1]))
		if err != nil {
			t.Fatal(err)
		}
		status, code, _, body := rawRequest(t, http.MethodGet, u, nil, "")
		if status != 400 || code != "InvalidArgument" {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
}

func atoiOr(t *testing.T, s string) int {
	t.Helper()
	n := 0
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// TestAbortMultipartUpload: an aborted upload is gone: UploadPart,
// ListParts, CompleteMultipartUpload and a second abort get 404
// NoSuchUpload, and nothing is stored.
func TestAbortMultipartUpload(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK)
	imur := upload5(t, b, "aborted.bin")
	if err := b.AbortMultipartUpload(imur); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"UploadPart", func() error {
			_, err := b.UploadPart(imur, strings.NewReader("late"), 4, 6)
			return err
		}},
		{"ListParts", func() error { _, err := b.ListUploadedParts(imur); return err }},
		{"CompleteMultipartUpload", func() error {
			_, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{{PartNumber: 1, ETag: `"X"`}})
			return err
		}},
		{"AbortMultipartUpload", func() error { return b.AbortMultipartUpload(imur) }},
	} {
		if st, code := serviceCode(t, op.run()); st != 404 || code != "NoSuchUpload" {
			t.Errorf("%s after abort: %d %s", op.name, st, code)
		}
	}
	if _, ok := emu.Object(testBucket, "aborted.bin"); ok {
		t.Fatal("an aborted upload was stored")
	}
}

// TestUploadPartPresigned: a part goes up through a presigned PUT URL (V1
// and V4) that signs partNumber and uploadId; the answer's ETag is the
// part's MD5 in quoted upper-case hex, as OSS sends it and as UploadPart
// returns it; the URL does not serve another part number or upload.
func TestUploadPartPresigned(t *testing.T) {
	for _, v := range authVersions {
		t.Run(v.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{})
			b := ossBucket(t, emu, testAK, testSK, v.opt)
			key := "uppy/a b.bin"
			imur, err := b.InitiateMultipartUpload(key)
			if err != nil {
				t.Fatal(err)
			}
			other, err := b.InitiateMultipartUpload(key)
			if err != nil {
				t.Fatal(err)
			}
			first := randomBytes(t, 100<<10)
			second := []byte("the last part")
			quotedMD5 := func(d []byte) string {
				s := md5.Sum(d)
				return `"` + strings.ToUpper(hex.EncodeToString(s[:])) + `"`
			}
			sign := func(n int, uploadID string) string {
				u, err := b.SignURL(key, oss.HTTPPut, 60, oss.AddParam("partNumber", itoa(n)), oss.AddParam("uploadId", uploadID))
				if err != nil {
					t.Fatal(err)
				}
				return u
			}
			u1 := sign(1, imur.UploadID)
			for _, tc := range []struct {
				name, from, to string
			}{
				{"another part number", "partNumber=1", "partNumber=2"},
				{"another upload", imur.UploadID, other.UploadID},
			} {
				if status, code, _, body := rawRequest(t, http.MethodPut, strings.Replace(u1, tc.from, tc.to, 1), nil, "x"); status != 403 || code != "SignatureDoesNotMatch" {
					t.Fatalf("%s: %d %s", tc.name, status, body)
				}
			}
			status, _, resp, body := rawRequest(t, http.MethodPut, u1, nil, string(first))
			if status != 200 || resp.Header.Get("ETag") != quotedMD5(first) {
				t.Fatalf("part 1: %d ETag %q want %q %s", status, resp.Header.Get("ETag"), quotedMD5(first), body)
			}
			// The SDK's UploadPart sees the same ETag.
			p2, err := b.UploadPart(imur, bytes.NewReader(second), int64(len(second)), 2)
			if err != nil || p2.ETag != quotedMD5(second) {
				t.Fatalf("UploadPart: %v ETag %q", err, p2.ETag)
			}
			listed, err := b.ListUploadedParts(imur)
			if err != nil || len(listed.UploadedParts) != 2 || listed.UploadedParts[0].ETag != quotedMD5(first) {
				t.Fatalf("ListParts: %v %+v", err, listed)
			}
			parts := []oss.UploadPart{{PartNumber: 1, ETag: resp.Header.Get("ETag")}, p2}
			if _, err := b.CompleteMultipartUpload(imur, parts); err != nil {
				t.Fatal(err)
			}
			obj, _ := emu.Object(testBucket, key)
			if !bytes.Equal(obj.Data, append(append([]byte(nil), first...), second...)) {
				t.Fatal("the completed object is not the two parts")
			}
			if _, err := b.ListUploadedParts(other); err != nil {
				t.Fatalf("the other upload: %v", err)
			}
		})
	}
}
