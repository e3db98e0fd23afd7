package ossemu

// The published vectors of ../shared/oss/vectors.md, checked against the
// emulator's verifiers: function by function, and where a whole request is
// published, through ServeHTTP with the emulator's clock at signing time.

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func atUnix(sec int64) func() time.Time {
	return func() time.Time { return time.Unix(sec, 0) }
}

func newVectorEmu(t *testing.T, now func() time.Time, keys map[string]string, buckets ...string) *Emulator {
	t.Helper()
	e, err := New(Options{Now: now, AccessKeys: keys, Buckets: buckets})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func serve(e *Emulator, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	return w
}

const a1Query = "param1=value1&%2Bparam1=value3&%7Cparam1=value4&%2Bparam2&%7Cparam2&param2"

func a1Headers(h http.Header) {
	h.Set("x-oss-head1", "value")
	h.Set("abc", "value")
	h.Set("ZAbc", "value")
	h.Set("XYZ", "value")
	h.Set("content-type", "text/plain")
	h.Set("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
}

func TestVectorA1CanonicalRequest(t *testing.T) {
	h := http.Header{}
	a1Headers(h)
	h.Set("x-oss-date", "20231216T162057Z")
	got := v4CanonicalRequest("PUT", "bucket", "1234+-/123/1.txt", parseQuery(a1Query), h, "bucket.oss-cn-hangzhou.aliyuncs.com", nil)
	want := "PUT\n/bucket/1234%2B-/123/1.txt\n%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2\n" +
		"content-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\nx-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
	if got != want {
		t.Fatalf("canonical request\n%q\nwant\n%q", got, want)
	}
	sts := v4StringToSign("20231216T162057Z", "20231216/cn-hangzhou/oss/aliyun_v4_request", got)
	if !strings.HasSuffix(sts, "f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4") {
		t.Fatalf("string to sign %q", sts)
	}
}

// TestVectorsHeaderV4 sends A1 and A2 as whole requests: they must be
// accepted (the object is stored).
func TestVectorsHeaderV4(t *testing.T) {
	for _, tc := range []struct {
		name, date, token, auth string
		unix                    int64
	}{
		{"A1", "20231216T162057Z", "", "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe", 1702743657},
		{"A2", "20231217T034736Z", "token", "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea", 1702784856},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newVectorEmu(t, atUnix(tc.unix), map[string]string{"ak": "sk"}, "bucket")
			r := httptest.NewRequest("PUT", "http://bucket.oss-cn-hangzhou.aliyuncs.com/1234%2B-/123/1.txt?"+a1Query, strings.NewReader("data"))
			a1Headers(r.Header)
			r.Header.Set("x-oss-date", tc.date)
			if tc.token != "" {
				r.Header.Set("x-oss-security-token", tc.token)
			}
			r.Header.Set("Authorization", tc.auth)
			if w := serve(e, r); w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if o, ok := e.Object("bucket", "1234+-/123/1.txt"); !ok || string(o.Data) != "data" {
				t.Fatal("object not stored")
			}
			// The same request 16 minutes later is too skewed.
			e.now = atUnix(tc.unix + 16*60)
			r = httptest.NewRequest("PUT", "http://bucket.oss-cn-hangzhou.aliyuncs.com/1234%2B-/123/1.txt?"+a1Query, strings.NewReader("data"))
			a1Headers(r.Header)
			r.Header.Set("x-oss-date", tc.date)
			if tc.token != "" {
				r.Header.Set("x-oss-security-token", tc.token)
			}
			r.Header.Set("Authorization", tc.auth)
			if w := serve(e, r); w.Code != 403 || !strings.Contains(w.Body.String(), "RequestTimeTooSkewed") {
				t.Fatalf("skewed: %d %s", w.Code, w.Body)
			}
			e.now = atUnix(tc.unix)
			// One signature byte off is refused.
			r = httptest.NewRequest("PUT", "http://bucket.oss-cn-hangzhou.aliyuncs.com/1234%2B-/123/1.txt?"+a1Query, strings.NewReader("data"))
			a1Headers(r.Header)
			r.Header.Set("x-oss-date", tc.date)
			r.Header.Set("Authorization", tc.auth[:len(tc.auth)-1]+"0")
			if w := serve(e, r); w.Code != 403 || !strings.Contains(w.Body.String(), "SignatureDoesNotMatch") {
				t.Fatalf("tampered: %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestVectorsQueryV4 sends the full URLs of B1, B2 and B6.
func TestVectorsQueryV4(t *testing.T) {
	for _, tc := range []struct {
		name, url, ak, sk, bucket, key, contentType string
		unix                                        int64
	}{
		{"B1", "http://bucket.oss-cn-hangzhou.aliyuncs.com/1234%2B-%2F123%2F1.txt?%2Bparam1=value3&%2Bparam2&param1=value1&param2&x-oss-credential=ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231217T025437Z&x-oss-expires=599&x-oss-signature=a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe&x-oss-signature-version=OSS4-HMAC-SHA256&%7Cparam1=value4&%7Cparam2",
			"ak", "sk", "bucket", "1234+-/123/1.txt", "application/octet-stream", 1702781677 + 60},
		{"B2", "http://bucket.oss-cn-hangzhou.aliyuncs.com/1234%2B-%2F123%2F1.txt?%2Bparam1=value3&%2Bparam2&param1=value1&param2&x-oss-credential=ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231217T035628Z&x-oss-expires=599&x-oss-security-token=token&x-oss-signature=3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5&x-oss-signature-version=OSS4-HMAC-SHA256&%7Cparam1=value4&%7Cparam2",
			"ak", "sk", "bucket", "1234+-/123/1.txt", "application/octet-stream", 1702785388 + 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newVectorEmu(t, atUnix(tc.unix), map[string]string{tc.ak: tc.sk}, tc.bucket)
			r := httptest.NewRequest("PUT", tc.url, strings.NewReader("data"))
			r.Header.Set("x-oss-head1", "value")
			r.Header.Set("abc", "value")
			r.Header.Set("Content-Type", tc.contentType)
			if w := serve(e, r); w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if _, ok := e.Object(tc.bucket, tc.key); !ok {
				t.Fatal("object not stored")
			}
			// Signed more than 15 minutes in the future: clock skew.
			e.now = atUnix(tc.unix - 60 - 16*60)
			r = httptest.NewRequest("PUT", tc.url, strings.NewReader("data"))
			r.Header.Set("x-oss-head1", "value")
			r.Header.Set("Content-Type", tc.contentType)
			if w := serve(e, r); w.Code != 403 || !strings.Contains(w.Body.String(), "RequestTimeTooSkewed") {
				t.Fatalf("skewed: %d %s", w.Code, w.Body)
			}
			// 599 s later than the window, the URL has expired.
			e.now = atUnix(tc.unix + 700)
			r = httptest.NewRequest("PUT", tc.url, strings.NewReader("data"))
			r.Header.Set("x-oss-head1", "value")
			r.Header.Set("Content-Type", tc.contentType)
			if w := serve(e, r); w.Code != 403 || !strings.Contains(w.Body.String(), "Request has expired") {
				t.Fatalf("expired: %d %s", w.Code, w.Body)
			}
		})
	}
}

func TestVectorsV1(t *testing.T) {
	for _, tc := range []struct {
		name, sts, sig string
	}{
		{"C1", "PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\nx-oss-meta-author:alice\nx-oss-meta-magic:abracadabra\n/examplebucket/nelson", "kSHKmLxlyEAKtZPkJhG9bZb5k7M="},
		{"C2", "PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\nx-oss-meta-author:alice\nx-oss-meta-magic:abracadabra\n/examplebucket/nelson?acl", "/afkugFbmWDQ967j1vr6zygBLQk="},
		{"C6", "GET\n\n\n1699807420\n/bucket/key?versionId=versionId", "dcLTea+Yh9ApirQ8o8dOPqtvJXQ="},
	} {
		if got := hmacSHA1Base64("sk", tc.sts); got != tc.sig {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.sig)
		}
	}
	// C1's string to sign, rebuilt from its request.
	h := http.Header{}
	h.Set("Content-MD5", "eB5eJF1ptWaXm4bijSPyxw==")
	h.Set("Content-Type", "text/html")
	h.Set("x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT")
	h.Set("x-oss-meta-author", "alice")
	h.Set("x-oss-meta-magic", "abracadabra")
	h.Set("abc", "ignored")
	got := v1StringToSign("PUT", h, h.Get("x-oss-date"), "examplebucket", "nelson", parseQuery("acl"))
	if !strings.HasSuffix(got, "/examplebucket/nelson?acl") || hmacSHA1Base64("sk", got) != "/afkugFbmWDQ967j1vr6zygBLQk=" {
		t.Errorf("C2 rebuilt: %q", got)
	}
	// C3/C4: only sub-resources are signed, sorted.
	if got := canonicalResource("examplebucket", "", parseQuery("resourceGroup&non-resousce=null")); got != "/examplebucket/?resourceGroup" {
		t.Errorf("C3 resource %q", got)
	}
	if got := canonicalResource("examplebucket", "", parseQuery("resourceGroup&acl")); got != "/examplebucket/?acl&resourceGroup" {
		t.Errorf("C4 resource %q", got)
	}
}

// TestVectorsQueryV1 sends C6 and C7 as GETs: the signature is accepted,
// so the answer is NoSuchKey rather than a signature error.
func TestVectorsQueryV1(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		unix      int64
	}{
		{"C6", "http://bucket.oss-cn-hangzhou.aliyuncs.com/key?Expires=1699807420&OSSAccessKeyId=ak&Signature=dcLTea%2BYh9ApirQ8o8dOPqtvJXQ%3D&versionId=versionId", 1699807400},
		{"C7", "http://bucket.oss-cn-hangzhou.aliyuncs.com/key%2B123?Expires=1699808204&OSSAccessKeyId=ak&Signature=jzKYRrM5y6Br0dRFPaTGOsbrDhY%3D&security-token=token&versionId=versionId", 1699808200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newVectorEmu(t, atUnix(tc.unix), map[string]string{"ak": "sk"}, "bucket")
			if w := serve(e, httptest.NewRequest("GET", tc.url, nil)); w.Code != 404 || !strings.Contains(w.Body.String(), "NoSuchKey") {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			e.now = atUnix(tc.unix + 30)
			if w := serve(e, httptest.NewRequest("GET", tc.url, nil)); w.Code != 403 || !strings.Contains(w.Body.String(), "Request has expired") {
				t.Fatalf("expired: %d %s", w.Code, w.Body)
			}
		})
	}
}

func postBody(t *testing.T, fields [][2]string, file string) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		if f[0] == "file" {
			fw, _ := mw.CreateFormFile("file", "a.txt")
			io.WriteString(fw, file)
			continue
		}
		mw.WriteField(f[0], f[1])
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

// TestVectorD1 posts D1's form: signature and every condition hold.
func TestVectorD1(t *testing.T) {
	const policy = "eyJjb25kaXRpb25zIjpbWyJjb250ZW50LWxlbmd0aC1yYW5nZSIsMCwxMDQ4NTc2MF0seyJidWNrZXQiOiJhaGFoYSJ9LHsiQSI6ImEifSx7ImtleSI6IkFCQyJ9XSwiZXhwaXJhdGlvbiI6IjIwMTMtMTItMDFUMTI6MDA6MDBaIn0="
	e := newVectorEmu(t, func() time.Time { return time.Date(2013, 11, 30, 0, 0, 0, 0, time.UTC) },
		map[string]string{"44CF9590006BF252F707": "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV"}, "ahaha")
	fields := [][2]string{{"key", "ABC"}, {"a", "a"}, {"OSSAccessKeyId", "44CF9590006BF252F707"}, {"policy", policy},
		{"Signature", "W835KpLsL6k1/oo28RcsEflB6hw="}, {"file", ""}}
	body, ct := postBody(t, fields, "hello")
	r := httptest.NewRequest("POST", "http://ahaha.oss-cn-hangzhou.aliyuncs.com/", body)
	r.Header.Set("Content-Type", ct)
	if w := serve(e, r); w.Code != 204 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if o, ok := e.Object("ahaha", "ABC"); !ok || string(o.Data) != "hello" {
		t.Fatal("object not stored")
	}
	// The {"key":"ABC"} condition fails for another key.
	fields[0][1] = "ABD"
	body, ct = postBody(t, fields, "hello")
	r = httptest.NewRequest("POST", "http://ahaha.oss-cn-hangzhou.aliyuncs.com/", body)
	r.Header.Set("Content-Type", ct)
	if w := serve(e, r); w.Code != 403 || !strings.Contains(w.Body.String(), `Policy Condition failed: ["eq", "$key", "ABC"]`) {
		t.Fatalf("other key: %d %s", w.Code, w.Body)
	}
	// After expiration.
	e.now = func() time.Time { return time.Date(2013, 12, 1, 12, 0, 0, 0, time.UTC) }
	fields[0][1] = "ABC"
	body, ct = postBody(t, fields, "hello")
	r = httptest.NewRequest("POST", "http://ahaha.oss-cn-hangzhou.aliyuncs.com/", body)
	r.Header.Set("Content-Type", ct)
	if w := serve(e, r); w.Code != 403 || !strings.Contains(w.Body.String(), "Policy expired") {
		t.Fatalf("expired: %d %s", w.Code, w.Body)
	}
}

func TestVectorD2(t *testing.T) {
	const policy = "eyJjb25kaXRpb25zIjpbWyJjb250ZW50LWxlbmd0aC1yYW5nZSIsMCwxMDQ4NTc2MF0seyJidWNrZXQiOiJhaGFoYSJ9LHsiQSI6ImEifSx7ImtleSI6IkFCQyJ9XSwiZXhwaXJhdGlvbiI6IjIwMTMtMTItMDFUMTI6MDA6MDBaIn0="
	got := hmacSHA256(v4Key("yourAccessKeySecret", "20250722", "cn-hangzhou", "oss"), policy)
	if h := hexString(got); h != "35870516a49acdd2db08c8225d2045d4f58c846df5c8b019d23307b0b29c423b" {
		t.Fatalf("D2 %s", h)
	}
}

func TestVectorsRPC(t *testing.T) {
	f1 := map[string]string{"SignatureVersion": "1.0", "Format": "JSON", "Timestamp": "2015-09-01T05:57:34Z",
		"RoleArn": "acs:ram::1234567890123:role/firstrole", "RoleSessionName": "client", "AccessKeyId": "testid",
		"SignatureMethod": "HMAC-SHA1", "Version": "2015-04-01", "Action": "AssumeRole",
		"SignatureNonce": "571f8fb8-506e-11e5-8e12-b8e8563dc8d2"}
	if got := rpcSignature("testsecret", rpcStringToSign("GET", f1)); got != "gNI7b0AyKZHxDgjBGPDgJ1Ce3L4=" {
		t.Errorf("F1 GET %s", got)
	}
	if got := rpcSignature("testsecret", rpcStringToSign("POST", f1)); got != "gyoTXBqArvZT/gKwPjXIYR9ZuB0=" {
		t.Errorf("F1 POST %s", got)
	}
	f2 := map[string]string{"Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
		"Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
		"Version": "2014-05-26", "SignatureVersion": "1.0"}
	if got := rpcSignature("testsecret", rpcStringToSign("GET", f2)); got != "OLeaidS1JvxuMvnyHOwuJ+uX5qY=" {
		t.Errorf("F2 %s", got)
	}
	if got := rpcSignature("accessKeySecret", rpcStringToSign("", map[string]string{"test": "ok"})); got != "jHx/oHoHNrbVfhncHEvPdHXZwHU=" {
		t.Errorf("F3 %s", got)
	}
}

// TestVectorF4 sends F4 as the STS SDK would: the emulator issues
// credentials; then the same nonce is refused.
func TestVectorF4(t *testing.T) {
	e, err := New(Options{
		Now:        func() time.Time { return time.Date(2023, 12, 3, 12, 12, 30, 0, time.UTC) },
		AccessKeys: map[string]string{"testid": "testsecret"},
		Roles:      []Role{{ARN: "acs:ram::1234567890123456:role/oss-upload"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	q := "AccessKeyId=testid&Action=AssumeRole&DurationSeconds=3600&Format=json&Policy=%7B%22Version%22%3A%221%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22oss%3APutObject%22%5D%2C%22Resource%22%3A%5B%22acs%3Aoss%3A%2A%3A%2A%3Aexamplebucket%2Fuser%2Feric%2F%2A%22%5D%7D%5D%7D&RoleArn=acs%3Aram%3A%3A1234567890123456%3Arole%2Foss-upload&RoleSessionName=web-upload-42&SignatureMethod=HMAC-SHA1&SignatureNonce=d6a7a9c4-1b5e-4f39-8f5e-2c1f3b0e9a11&SignatureVersion=1.0&Timestamp=2023-12-03T12%3A12%3A12Z&Version=2015-04-01&Signature=JRup8mb%2F%2B1WftfBJx4TpEMPa4jo%3D"
	w := serve(e, httptest.NewRequest("POST", "http://sts.cn-hangzhou.aliyuncs.com/?"+q, nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"SecurityToken":"CAIS`) || !strings.Contains(w.Body.String(), `"Expiration":"2023-12-03T13:12:30Z"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = serve(e, httptest.NewRequest("POST", "http://sts.cn-hangzhou.aliyuncs.com/?"+q, nil))
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"Code":"SignatureNonceUsed"`) {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
