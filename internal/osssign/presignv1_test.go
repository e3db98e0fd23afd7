package osssign

import (
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddy-oss/caddy-oss/internal/refsign"
)

const (
	v1TestBucket = "example-bucket"
	v1TestBase   = "https://example-bucket.oss-cn-hangzhou.aliyuncs.com"
	v1TestCB     = "eyJjYWxsYmFja1VybCI6Imh0dHBzOi8vYS5leGFtcGxlL2NiIn0="
	v1TestToken  = "CAIS/tok+en=="
)

// v1SDKCase is one presigned PUT URL signed by both the SDK and ours.
type v1SDKCase struct {
	name, base, key, ct string
	id, token           string
	params              [][2]string
}

var v1SDKCases = []v1SDKCase{
	{name: "plain", key: "uploads/a.png", ct: "image/png"},
	{name: "space", key: "u/alice smith.png", ct: "image/png"},
	{name: "plus", key: "a+b+.txt", ct: "text/plain"},
	{name: "percent", key: "100%/x%20y%2F.bin", ct: "application/octet-stream"},
	{name: "star and tilde", key: "star*~tilde~.bin", ct: "application/octet-stream"},
	{name: "unicode", key: "ünï/日本語 ファイル.txt", ct: "text/plain"},
	{name: "slash runs", key: "a//b///c/.txt", ct: "text/plain"},
	{name: "reserved", key: "q?#&=;:@,$!'()[]|\\^`{}\"<>.bin", ct: "application/octet-stream"},
	{name: "type with parameters", key: "t.txt", ct: "text/plain; charset=utf-8"},
	{name: "type with quoted parameter", key: "m.bin", ct: `multipart/mixed; boundary="a b+c"`},
	{name: "no type", key: "raw.bin"},
	{name: "emulator base with port", base: "http://example-bucket.localhost:9000", key: "x y.png", ct: "image/png"},
	{name: "sts", key: "in/x.txt", ct: "text/plain", id: "STS.NTestTemporaryAccessKeyId", token: v1TestToken},
	{name: "callback", key: "in/cb.png", ct: "image/png",
		params: [][2]string{{"callback", v1TestCB}, {"callback-var", "eyJ4OnUiOiJ2In0="}}},
	{name: "sts and callback", key: "in/a b+c.png", ct: "image/png; q=1", token: v1TestToken,
		params: [][2]string{{"callback", v1TestCB}, {"callback-var", "eyJ4OnUiOiJ2In0="}}},
	{name: "upload part", key: "u/big.bin",
		params: [][2]string{{"partNumber", "7"}, {"uploadId", "0004B9894A22E5B1888A1E29F823****"}}},
	{name: "upload part with sts", key: "u/a b.bin", token: v1TestToken,
		params: [][2]string{{"partNumber", "10000"}, {"uploadId", "9A0F6A2B5C4D3E2F1A0B9C8D7E6F5A4B"}}},
	{name: "token only sorting last", key: "k", token: "zz+/=",
		params: [][2]string{{"callback", "c"}}},
}

func (tc v1SDKCase) creds() Credentials {
	c := Credentials{ID: tc.id, Secret: "test/secret+=", Token: tc.token}
	if c.ID == "" {
		c.ID = "LTAI5tTestAccessKey"
	}
	return c
}

func (tc v1SDKCase) baseURL() string {
	if tc.base != "" {
		return tc.base
	}
	return v1TestBase
}

// sdkV1Bucket is an aliyun-oss-go-sdk V1 client for tc's upload URL, as
// the presign route built it, and the SignURL options for tc.
func sdkV1Bucket(tb testing.TB, tc v1SDKCase) (*oss.Bucket, []oss.Option) {
	tb.Helper()
	c := tc.creds()
	opts := []oss.ClientOption{oss.UseCname(true), oss.AuthVersion(oss.AuthV1)}
	if c.Token != "" {
		opts = append(opts, oss.SecurityToken(c.Token))
	}
	client, err := oss.New(tc.baseURL(), c.ID, c.Secret, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := client.Bucket(v1TestBucket)
	if err != nil {
		tb.Fatal(err)
	}
	var sdkOpts []oss.Option
	if tc.ct != "" {
		sdkOpts = append(sdkOpts, oss.ContentType(tc.ct))
	}
	for _, p := range tc.params {
		sdkOpts = append(sdkOpts, oss.AddParam(p[0], p[1]))
	}
	return b, sdkOpts
}

// sdkPresignV1 signs tc with aliyun-oss-go-sdk's SignURL, as the presign
// route did, and returns the URL and its absolute expiry.
func sdkPresignV1(tb testing.TB, tc v1SDKCase) (string, time.Time) {
	tb.Helper()
	b, sdkOpts := sdkV1Bucket(tb, tc)
	signed, err := b.SignURL(tc.key, oss.HTTPPut, 900, sdkOpts...)
	if err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(signed)
	if err != nil {
		tb.Fatal(err)
	}
	secs, err := strconv.ParseInt(u.Query().Get("Expires"), 10, 64)
	if err != nil {
		tb.Fatalf("SDK URL %s: Expires: %v", signed, err)
	}
	return signed, time.Unix(secs, 0)
}

func TestPresignV1MatchesSDK(t *testing.T) {
	for _, tc := range v1SDKCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.creds()
			sdkURL, expires := sdkPresignV1(t, tc)
			ours := string(new(Signer).AppendV1URL(nil, "PUT", V1URL{
				BaseURL: tc.baseURL(), Bucket: v1TestBucket, Key: tc.key,
				ContentType: tc.ct, Expires: expires, Params: tc.params,
			}, c))
			su, err := url.Parse(sdkURL)
			if err != nil {
				t.Fatal(err)
			}
			ou, err := url.Parse(ours)
			if err != nil {
				t.Fatalf("%s: %v", ours, err)
			}
			if ou.Scheme != su.Scheme || ou.Host != su.Host {
				t.Errorf("origin %s://%s, SDK %s://%s", ou.Scheme, ou.Host, su.Scheme, su.Host)
			}
			if ou.Path != su.Path || ou.EscapedPath() != su.EscapedPath() {
				t.Errorf("path %q (%s), SDK %q (%s)", ou.Path, ou.EscapedPath(), su.Path, su.EscapedPath())
			}
			if ou.Path != "/"+tc.key {
				t.Errorf("path %q, want /%s", ou.Path, tc.key)
			}
			oq, sq := ou.Query(), su.Query()
			if !reflect.DeepEqual(oq, sq) {
				t.Errorf("query %v\nSDK   %v", oq, sq)
			}
			if oq.Get("Signature") == "" || oq.Get("Signature") != sq.Get("Signature") {
				t.Errorf("signature %q, SDK %q", oq.Get("Signature"), sq.Get("Signature"))
			}
			if got := oq.Get("security-token"); got != c.Token {
				t.Errorf("security-token %q, want %q", got, c.Token)
			}
			// Both sort the parameters, so the URLs are the same bytes.
			if ours != sdkURL {
				t.Errorf("URL\n%s\nSDK\n%s", ours, sdkURL)
			}
			// And the independent reference signer agrees.
			want := refsign.V1(c.Secret, refsign.V1PresignString("PUT", tc.ct, v1TestBucket, tc.key, oq))
			if oq.Get("Signature") != want {
				t.Errorf("signature %s, reference %s", oq.Get("Signature"), want)
			}
		})
	}
}

// TestPresignV1Reference covers what the SDK comparison cannot: the
// Content-Type is signed as the header arrives (trimmed), empty values
// are bare names, and the URL is appended to what dst holds.
func TestPresignV1Reference(t *testing.T) {
	exp := time.Unix(1701609132, 0)
	for _, tc := range []struct {
		name, ct, signedCT string
		token              string
		params             [][2]string
		wantQuery          string // the query after the signature
	}{
		{name: "type trimmed", ct: " text/plain \t", signedCT: "text/plain"},
		{name: "blank type unsigned", ct: "  ", signedCT: ""},
		{name: "empty value is a bare name", params: [][2]string{{"callback-var", ""}, {"partNumber", "1"}},
			wantQuery: "&callback-var&partNumber=1"},
		{name: "token between parameters", token: "t+k", params: [][2]string{{"partNumber", "1"}, {"uploadId", "u/1"}},
			wantQuery: "&partNumber=1&security-token=t%2Bk&uploadId=u%2F1"},
		{name: "token before every parameter", token: "tk", params: [][2]string{{"uploadId", "u"}},
			wantQuery: "&security-token=tk&uploadId=u"},
		{name: "token after every parameter", token: "tk", params: [][2]string{{"callback", "c"}, {"partNumber", "2"}},
			wantQuery: "&callback=c&partNumber=2&security-token=tk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Credentials{ID: "ak", Secret: "sk", Token: tc.token}
			prefix := []byte(`{"url":"`)
			got := new(Signer).AppendV1URL(prefix, "PUT", V1URL{
				BaseURL: "http://b.localhost:9000", Bucket: "b", Key: "k/ü v",
				ContentType: tc.ct, Expires: exp, Params: tc.params,
			}, c)
			if !strings.HasPrefix(string(got), `{"url":"http://b.localhost:9000/k%2F%C3%BC%20v?Expires=1701609132&OSSAccessKeyId=ak&Signature=`) {
				t.Fatalf("got %s", got)
			}
			u, err := url.Parse(strings.TrimPrefix(string(got), `{"url":"`))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if want := refsign.V1("sk", refsign.V1PresignString("PUT", tc.signedCT, "b", "k/ü v", q)); q.Get("Signature") != want {
				t.Errorf("signature %s, reference %s", q.Get("Signature"), want)
			}
			_, after, _ := strings.Cut(u.RawQuery, "&Signature=")
			if i := strings.IndexByte(after, '&'); i >= 0 {
				after = after[i:]
			} else {
				after = ""
			}
			if after != tc.wantQuery {
				t.Errorf("parameters %q, want %q", after, tc.wantQuery)
			}
		})
	}
}

// TestPresignV1Vectors reproduces the published V1 presigned URLs of
// vectors.md section C. C6, C7 and C9's GETs sign another method than our
// PUT URLs, through the same code (appendPresignV1Method); C9's last line
// signs an x-oss-object-acl header, which a presigned PUT of ours never
// asks the uploader to send, so it is left out.
func TestPresignV1Vectors(t *testing.T) {
	const c10CB = "eyJjYWxsYmFja1VybCI6Imh0dHBzOi8vYXBwLmV4YW1wbGUuY29tL29zcy9jYWxsYmFjayIsImNhbGxiYWNrQm9keSI6ImJ1Y2tldD0ke2J1Y2tldH0mb2JqZWN0PSR7b2JqZWN0fSZzaXplPSR7c2l6ZX0mdWlkPSR7eDp1aWR9IiwiY2FsbGJhY2tCb2R5VHlwZSI6ImFwcGxpY2F0aW9uL3gtd3d3LWZvcm0tdXJsZW5jb2RlZCJ9"
	c9 := Credentials{ID: "44CF9590006BF252F707", Secret: "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV"}
	c9in := func(ct string, params ...[2]string) V1URL {
		return V1URL{BaseURL: "http://test_bucket.oss-cn-hangzhou.aliyuncs.com", Bucket: "test_bucket",
			Key: "test_object_key", ContentType: ct, Expires: time.Unix(1547105286, 0), Params: params}
	}
	for _, tc := range []struct {
		name, method string
		in           V1URL
		c            Credentials
		wantURL      string // the whole URL, when the vector lists it
		wantSig      string // the decoded Signature, when it lists only that
	}{
		{name: "C6", method: "GET",
			in: V1URL{BaseURL: "http://bucket.oss-cn-hangzhou.aliyuncs.com", Bucket: "bucket", Key: "key",
				Expires: time.Unix(1699807420, 0), Params: [][2]string{{"versionId", "versionId"}}},
			c:       Credentials{ID: "ak", Secret: "sk"},
			wantURL: "http://bucket.oss-cn-hangzhou.aliyuncs.com/key?Expires=1699807420&OSSAccessKeyId=ak&Signature=dcLTea%2BYh9ApirQ8o8dOPqtvJXQ%3D&versionId=versionId"},
		{name: "C7", method: "GET",
			in: V1URL{BaseURL: "http://bucket.oss-cn-hangzhou.aliyuncs.com", Bucket: "bucket", Key: "key+123",
				Expires: time.Unix(1699808204, 0), Params: [][2]string{{"versionId", "versionId"}}},
			c:       Credentials{ID: "ak", Secret: "sk", Token: "token"},
			wantURL: "http://bucket.oss-cn-hangzhou.aliyuncs.com/key%2B123?Expires=1699808204&OSSAccessKeyId=ak&Signature=jzKYRrM5y6Br0dRFPaTGOsbrDhY%3D&security-token=token&versionId=versionId"},
		{name: "C9 get", method: "GET", in: c9in(""), c: c9, wantSig: "8bRz6KZY9DF93/4whvcyyv3UY4k="},
		{name: "C9 get acl", method: "GET", in: c9in("", [2]string{"acl", ""}), c: c9, wantSig: "/NIaPMkHsNUdIUfwp7e+Fz/vytI="},
		{name: "C9 put", method: "PUT", in: c9in("text/plain"), c: c9, wantSig: "qEYcrQ8CvOxaqVZZ8Kcw+3pf2EA="},
		// C10 lists the key path with '/' kept, as the V2 SDKs and ali-oss
		// send it; ours escapes it as %2F as aliyun-oss-go-sdk does in
		// CNAME mode (TestPresignV1MatchesSDK). OSS decodes both to the
		// same key, so the decoded path, the raw query and the signature
		// are what must match.
		{name: "C10", method: "PUT",
			in: V1URL{BaseURL: "https://examplebucket.oss-cn-hangzhou.aliyuncs.com", Bucket: "examplebucket",
				Key: "user/eric/photo 1.png", ContentType: "image/png", Expires: time.Unix(1701609132, 0),
				Params: [][2]string{{"callback", c10CB}, {"callback-var", "eyJ4OnVpZCI6IjEyMzQ1In0="}}},
			c:       Credentials{ID: "STS.NTestTemporaryAccessKeyId", Secret: "TestTemporaryAccessKeySecret", Token: "CAIS1234TestSecurityToken=="},
			wantURL: "https://examplebucket.oss-cn-hangzhou.aliyuncs.com/user/eric/photo%201.png?Expires=1701609132&OSSAccessKeyId=STS.NTestTemporaryAccessKeyId&Signature=VMuPhRBfiHZODMzPkdK3WD69AUY%3D&callback=" + c10CB + "&callback-var=eyJ4OnVpZCI6IjEyMzQ1In0%3D&security-token=CAIS1234TestSecurityToken%3D%3D"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(new(Signer).AppendV1URL(nil, tc.method, tc.in, tc.c))
			gu, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantSig != "" {
				if s := gu.Query().Get("Signature"); s != tc.wantSig {
					t.Errorf("signature %s, want %s", s, tc.wantSig)
				}
				return
			}
			if !strings.Contains(tc.in.Key, "/") {
				if got != tc.wantURL {
					t.Errorf("URL\n%s\nwant\n%s", got, tc.wantURL)
				}
				return
			}
			wu, err := url.Parse(tc.wantURL)
			if err != nil {
				t.Fatal(err)
			}
			if gu.Scheme != wu.Scheme || gu.Host != wu.Host || gu.Path != wu.Path || gu.RawQuery != wu.RawQuery {
				t.Errorf("URL\n%s\nwant the same key, query and signature as\n%s", got, tc.wantURL)
			}
		})
	}
}

// TestPresignV1ManySecrets signs with more secrets than the HMAC cache
// holds, from several goroutines, so entries are dropped and rebuilt while
// others sign: every signature must still be the secret's own.
func TestPresignV1ManySecrets(t *testing.T) {
	const workers, secrets = 4, 3 * maxCachedV1Secrets
	in := V1URL{BaseURL: "http://b.localhost:9000", Bucket: "b", Key: "k", ContentType: "text/plain", Expires: time.Unix(1701609132, 0)}
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var buf []byte
			for i := range secrets {
				c := Credentials{ID: "ak", Secret: "secret-" + strconv.Itoa((i+w*7)%secrets)}
				buf = new(Signer).AppendV1URL(buf[:0], "PUT", in, c)
				u, err := url.Parse(string(buf))
				if err != nil {
					errs <- err
					return
				}
				q := u.Query()
				if want := refsign.V1(c.Secret, refsign.V1PresignString("PUT", "text/plain", "b", "k", q)); q.Get("Signature") != want {
					errs <- fmt.Errorf("%s: signature %s, reference %s", c.Secret, q.Get("Signature"), want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

var v1BenchCases = []v1SDKCase{
	{name: "sts and callback", key: "uploads/2024/photo 1.png", ct: "image/png", token: v1TestToken,
		params: [][2]string{{"callback", v1TestCB}, {"callback-var", "eyJ4OnUiOiJ2In0="}}},
	{name: "upload part", key: "uploads/big.bin",
		params: [][2]string{{"partNumber", "7"}, {"uploadId", "0004B9894A22E5B1888A1E29F823ABCD"}}},
}

func BenchmarkPresignV1Signer(b *testing.B) {
	for _, tc := range v1BenchCases {
		b.Run(tc.name, func(b *testing.B) {
			c := tc.creds()
			in := V1URL{BaseURL: tc.baseURL(), Bucket: v1TestBucket, Key: tc.key, ContentType: tc.ct,
				Expires: time.Now().Add(time.Hour), Params: tc.params}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = new(Signer).AppendV1URL(buf[:0], "PUT", in, c)
			}
		})
	}
}

func BenchmarkPresignV1SDK(b *testing.B) {
	for _, tc := range v1BenchCases {
		b.Run(tc.name, func(b *testing.B) {
			bucket, sdkOpts := sdkV1Bucket(b, tc)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bucket.SignURL(tc.key, oss.HTTPPut, 3600, sdkOpts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
