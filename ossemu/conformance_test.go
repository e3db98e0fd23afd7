package ossemu_test

// Where OSS's behaviour is easy to get wrong: each test holds the emulator
// to what OSS does, through aliyun-oss-go-sdk or raw signed HTTP.

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// TestRAMResourceWildcards: in a RAM resource * and ? are wildcards, in an
// object key they are plain characters. A session allowed on u/* may
// write u/*x and u/?x like any key under u/.
func TestRAMResourceWildcards(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	for _, tc := range []struct {
		resource string // after acs:oss:*:*:examplebucket/
		key      string
		allowed  bool
	}{
		{"u/*", "u/*x", true},
		{"u/*", "u/?x", true},
		{"u/*", "u/*", true},
		{"u/*", "u/a*b?c", true},
		{"u/*", "v/*x", false},
		{"u/*/x", "u/*/x", true},
		{"u/*/x", "u/a/b/x", true},
		{"u/*/x", "u/*/y", false},
		{"q/?", "q/*", true},
		{"q/?", "q/?", true},
		{"q/?", "q/**", false},
		{"q/?", "q/é", true},
		{"q/?", "q/éé", false},
		{"a*b", "a*b", true},
		{"a*b", "ab", true},
		{"a*b", "a*c", false},
		{"lit", "lit*", false},
	} {
		t.Run(tc.resource+" "+tc.key, func(t *testing.T) {
			policy := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:PutObject","Resource":"acs:oss:*:*:examplebucket/` + tc.resource + `"}]}`
			c := assumeRole(t, emu, policy)
			b := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret),
				oss.SecurityToken(tea.StringValue(c.SecurityToken)))
			err := b.PutObject(tc.key, strings.NewReader("x"))
			if tc.allowed {
				if err != nil {
					t.Fatalf("PutObject %q under %q: %v", tc.key, tc.resource, err)
				}
				if _, ok := emu.Object(testBucket, tc.key); !ok {
					t.Fatalf("%q not stored", tc.key)
				}
				return
			}
			if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
				t.Fatalf("PutObject %q under %q: %d %s, want 403 AccessDenied", tc.key, tc.resource, st, code)
			}
		})
	}
}

// postRawPolicy posts a form signed (V1) over a policy document given as
// raw JSON text, with extra fields before the file.
func postRawPolicy(t *testing.T, emu *ossemu.Emulator, policyJSON string, fields []formField, data []byte) (int, string) {
	t.Helper()
	p := base64.StdEncoding.EncodeToString([]byte(policyJSON))
	all := append([]formField{{"OSSAccessKeyId", testAK}, {"policy", p}, {"Signature", hmacSHA1(testSK, p)}}, fields...)
	all = append(all, formField{"file", ""})
	resp, body := postObject(t, emu.Endpoint()+"/"+testBucket, all, "f.txt", "text/plain", data)
	var e struct{ Code string }
	_ = xmlUnmarshal([]byte(body), &e)
	if e.Code == "" {
		e.Code = http.StatusText(resp.StatusCode)
	}
	return resp.StatusCode, e.Code
}

// TestPostPolicyGrammar: content-length-range takes JSON integers, the
// document is one JSON object with nothing after it, operators are
// lower-case, and \$ in a value is a literal $ (protocol.md §1.3).
func TestPostPolicyGrammar(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	exp := policyExpiring()
	doc := func(conds string) string { return `{"expiration":"` + exp + `","conditions":[` + conds + `]}` }
	key := []formField{{"key", "up/a.txt"}}
	for _, tc := range []struct {
		name   string
		policy string
		fields []formField
		status int
		code   string
	}{
		{"integer range", doc(`["content-length-range",1,10]`), key, 204, ""},
		{"range bounds as strings", doc(`["content-length-range","1","10"]`), key, 400, "InvalidPolicyDocument"},
		{"range maximum as a string", doc(`["content-length-range",1,"10"]`), key, 400, "InvalidPolicyDocument"},
		{"range with a fraction", doc(`["content-length-range",1.5,10]`), key, 400, "InvalidPolicyDocument"},
		{"range with an exponent", doc(`["content-length-range",1,1e3]`), key, 400, "InvalidPolicyDocument"},
		{"range bound null", doc(`["content-length-range",null,10]`), key, 400, "InvalidPolicyDocument"},
		{"whitespace after the document", doc(`["starts-with","$key","up/"]`) + "\n\t ", key, 204, ""},
		{"a character after the document", doc(`["starts-with","$key","up/"]`) + "x", key, 400, "InvalidPolicyDocument"},
		{"a second object after the document", doc(`["starts-with","$key","up/"]`) + "{}", key, 400, "InvalidPolicyDocument"},
		{"a brace after the document", doc(`["starts-with","$key","up/"]`) + "}", key, 400, "InvalidPolicyDocument"},
		{"null document", "null", key, 400, "InvalidPolicyDocument"},
		{"Starts-With", doc(`["Starts-With","$key","up/"]`), key, 400, "InvalidPolicyDocument"},
		{"EQ", doc(`["EQ","$key","up/a.txt"]`), key, 400, "InvalidPolicyDocument"},
		{"IN", doc(`["IN","$key",["up/a.txt"]]`), key, 400, "InvalidPolicyDocument"},
		{"Content-Length-Range", doc(`["Content-Length-Range",1,10]`), key, 400, "InvalidPolicyDocument"},
		{"lower-case eq", doc(`["eq","$key","up/a.txt"]`), key, 204, ""},
		{`\$ is a literal $`, doc(`["eq","$x:price","\$5"]`), []formField{{"key", "up/a.txt"}, {"x:price", "$5"}}, 204, ""},
		{`\$ does not match \$`, doc(`["eq","$x:price","\$5"]`), []formField{{"key", "up/a.txt"}, {"x:price", `\$5`}}, 403, "AccessDenied"},
		{`\$ in starts-with`, doc(`["starts-with","$key","up/\$"]`), []formField{{"key", "up/$a.txt"}}, 204, ""},
		{`\$ in a simple condition`, doc(`{"x:tag":"a\$b"}`), []formField{{"key", "up/a.txt"}, {"x:tag", "a$b"}}, 204, ""},
		{`\$ in an in list`, doc(`["in","$x:tag",["\$1","\$2"]]`), []formField{{"key", "up/a.txt"}, {"x:tag", "$2"}}, 204, ""},
		{`\\$ is a backslash and a $`, doc(`["eq","$x:p","a\\$"]`), []formField{{"key", "up/a.txt"}, {"x:p", `a\$`}}, 204, ""},
		{`\\$ does not match $`, doc(`["eq","$x:p","a\\$"]`), []formField{{"key", "up/a.txt"}, {"x:p", `a$`}}, 403, "AccessDenied"},
		{`an unknown escape stays refused`, doc(`["eq","$x:p","\q"]`), []formField{{"key", "up/a.txt"}, {"x:p", "q"}}, 400, "InvalidPolicyDocument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code := postRawPolicy(t, emu, tc.policy, tc.fields, []byte("hello"))
			if status != tc.status || (tc.code != "" && code != tc.code) {
				t.Fatalf("%s: %d %s, want %d %s", tc.policy, status, code, tc.status, tc.code)
			}
		})
	}
}

// signedBucketGet sends a GET on the bucket signed V1 in the Authorization
// header with the test's permanent key.
func signedBucketGet(t *testing.T, emu *ossemu.Emulator, rawQuery string) (int, string) {
	t.Helper()
	date := time.Now().UTC().Format(http.TimeFormat)
	sig := hmacSHA1(testSK, "GET\n\n\n"+date+"\n/"+testBucket+"/")
	u := emu.Endpoint() + "/" + testBucket + "/"
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	status, _, _, body := rawRequest(t, http.MethodGet, u, http.Header{"Date": {date}, "Authorization": {"OSS " + testAK + ":" + sig}}, "")
	return status, body
}

// TestListObjectsDelimiter: keys sharing what follows the prefix up to the
// delimiter come back once as a CommonPrefixes entry, which counts toward
// max-keys and can be the NextMarker, as on OSS.
func TestListObjectsDelimiter(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	for _, k := range []string{"a/1", "a/b/2", "a/b/3", "a/c+d/4", "a/e f", "a/z", "b/1", "top"} {
		if err := emu.PutObject(testBucket, k, []byte(k), "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	b := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	type page struct {
		keys, prefixes string
		truncated      bool
		next           string
	}
	for _, tc := range []struct {
		name  string
		opts  []oss.Option
		pages []page
	}{
		{"delimiter under a prefix", []oss.Option{oss.Prefix("a/"), oss.Delimiter("/")},
			[]page{{"a/1,a/e f,a/z", "a/b/,a/c+d/", false, ""}}},
		{"delimiter at the top", []oss.Option{oss.Delimiter("/")},
			[]page{{"top", "a/,b/", false, ""}}},
		{"pages of two", []oss.Option{oss.Prefix("a/"), oss.Delimiter("/"), oss.MaxKeys(2)}, []page{
			{"a/1", "a/b/", true, "a/b/"},
			{"a/e f", "a/c+d/", true, "a/e f"},
			{"a/z", "", false, ""},
		}},
		{"a delimiter of several characters", []oss.Option{oss.Delimiter("b/")},
			[]page{{"a/1,a/c+d/4,a/e f,a/z,top", "a/b/,b/", false, ""}}},
		{"no delimiter", []oss.Option{oss.Prefix("a/b")},
			[]page{{"a/b/2,a/b/3", "", false, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := ""
			for i, want := range tc.pages {
				res, err := b.ListObjects(append(tc.opts, oss.Marker(marker))...)
				if err != nil {
					t.Fatalf("page %d: %v", i, err)
				}
				var keys []string
				for _, o := range res.Objects {
					keys = append(keys, o.Key)
				}
				got := page{strings.Join(keys, ","), strings.Join(res.CommonPrefixes, ","), res.IsTruncated, res.NextMarker}
				if got != want {
					t.Fatalf("page %d: %+v, want %+v", i, got, want)
				}
				marker = res.NextMarker
			}
		})
	}
}

// TestListObjectsEncodingType: with encoding-type=url the names in the
// answer (keys, prefixes, markers, delimiter) are url-encoded and the
// answer says so; without it they are as stored; another value is refused.
func TestListObjectsEncodingType(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	for _, k := range []string{"p q/1", "p q/a+b/2", "p q/ü"} {
		if err := emu.PutObject(testBucket, k, []byte(k), "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		query  string
		status int
		want   []string // in the body
		absent []string
	}{
		{"url", "encoding-type=url&prefix=p%20q%2F&delimiter=%2F&max-keys=1&marker=p%20q%2F0", 200, []string{
			"<EncodingType>url</EncodingType>", "<Prefix>p%20q/</Prefix>", "<Marker>p%20q/0</Marker>",
			"<Delimiter>/</Delimiter>", "<Key>p%20q/1</Key>", "<NextMarker>p%20q/1</NextMarker>",
		}, []string{"<Key>p q/1</Key>"}},
		{"url prefixes and non-ASCII", "encoding-type=url&prefix=p%20q%2F&delimiter=%2F&marker=p%20q%2F1", 200, []string{
			"<CommonPrefixes><Prefix>p%20q/a%2Bb/</Prefix></CommonPrefixes>", "<Key>p%20q/%C3%BC</Key>",
		}, nil},
		{"plain", "prefix=p%20q%2F&delimiter=%2F", 200, []string{
			"<Key>p q/1</Key>", "<Prefix>p q/a+b/</Prefix>", "<Key>p q/ü</Key>",
		}, []string{"EncodingType"}},
		{"another encoding", "encoding-type=base64", 400, []string{"<Code>InvalidArgument</Code>", "<ArgumentName>encoding-type</ArgumentName>"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := signedBucketGet(t, emu, tc.query)
			if status != tc.status {
				t.Fatalf("%d %s", status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("answer lacks %s:\n%s", w, body)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(body, a) {
					t.Errorf("answer has %s:\n%s", a, body)
				}
			}
		})
	}
	// The SDK asks for url encoding and decodes what it gets.
	res, err := ossBucket(t, emu, testAK, testSK).ListObjects(oss.Prefix("p q/"), oss.Delimiter("/"))
	if err != nil || len(res.Objects) != 2 || res.Objects[0].Key != "p q/1" || res.Objects[1].Key != "p q/ü" ||
		len(res.CommonPrefixes) != 1 || res.CommonPrefixes[0] != "p q/a+b/" || res.Prefix != "p q/" {
		t.Fatalf("SDK ListObjects: %v %+v", err, res)
	}
}

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
	for _, v := range []struct {
		name string
		opt  oss.ClientOption
	}{{"V1", oss.AuthVersion(oss.AuthV1)}, {"V4", oss.AuthVersion(oss.AuthV4)}} {
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

// stsClientWithToken is an STS client signing with STS credentials, as a
// server on an ECS RAM role or an OIDC role does.
func stsClientWithToken(t *testing.T, emu *ossemu.Emulator, ak, sk, token string) *sts.Client {
	t.Helper()
	cfg := &openapi.Config{
		AccessKeyId:     tea.String(ak),
		AccessKeySecret: tea.String(sk),
		Endpoint:        tea.String(emu.Addr()),
		Protocol:        tea.String("http"),
		RegionId:        tea.String(emu.Region()),
	}
	if token != "" {
		cfg.SecurityToken = tea.String(token)
	}
	c, err := sts.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAssumeRoleWithSTSCredentials: AssumeRole signed with an STS
// AccessKeyId and its SecurityToken is answered like one signed with a
// permanent key, within what the calling session's policies allow; a
// missing, wrong or expired token is refused.
func TestAssumeRoleWithSTSCredentials(t *testing.T) {
	const (
		serverRole = "acs:ram::1234567890123456:role/ecs-server"
		narrowRole = "acs:ram::1234567890123456:role/no-sts"
	)
	emu := startEmu(t, ossemu.Options{Roles: []ossemu.Role{
		{ARN: testRole, MaxSessionDuration: 2 * time.Hour},
		{ARN: serverRole, Policy: `{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"acs:ram:*:*:role/uploader"}]}`},
		{ARN: narrowRole, Policy: `{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}`},
	}})
	issue := func(t *testing.T, arn string) *sts.AssumeRoleResponseBodyCredentials {
		t.Helper()
		resp, err := stsClient(t, emu, testAK, testSK).AssumeRole(&sts.AssumeRoleRequest{
			RoleArn: tea.String(arn), RoleSessionName: tea.String("server"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Body.Credentials
	}
	request := func() *sts.AssumeRoleRequest {
		return &sts.AssumeRoleRequest{
			RoleArn: tea.String(testRole), RoleSessionName: tea.String("browser-7"), DurationSeconds: tea.Int64(900),
			Policy: tea.String(sessionPolicy),
		}
	}
	codeOf := func(err error) string {
		var se *tea.SDKError
		if !errorsAs(err, &se) {
			return fmt.Sprint(err)
		}
		return tea.StringValue(se.Code)
	}
	for _, tc := range []struct {
		name   string
		caller string // role of the calling session
		token  func(c *sts.AssumeRoleResponseBodyCredentials) string
		expire bool
		code   string // "" for success
	}{
		{"role allowed to assume", serverRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, false, ""},
		{"role with no policy", testRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, false, ""},
		{"role not allowed sts:AssumeRole", narrowRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, false, "NoPermission"},
		{"no token", serverRole, func(*sts.AssumeRoleResponseBodyCredentials) string { return "" }, false, "MissingSecurityToken"},
		{"another token", serverRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) + "x" }, false, "InvalidSecurityToken.MismatchWithAccessKey"},
		{"expired token", serverRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, true, "InvalidSecurityToken.Expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := issue(t, tc.caller)
			if tc.expire {
				emu.ExpireSessions()
			}
			resp, err := stsClientWithToken(t, emu, tea.StringValue(caller.AccessKeyId), tea.StringValue(caller.AccessKeySecret), tc.token(caller)).AssumeRole(request())
			if tc.code != "" {
				if codeOf(err) != tc.code {
					t.Fatalf("AssumeRole: %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("AssumeRole with STS credentials: %v", err)
			}
			c := resp.Body.Credentials
			b := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret), oss.SecurityToken(tea.StringValue(c.SecurityToken)))
			if err := b.PutObject("user/eric/chained.txt", strings.NewReader("x")); err != nil {
				t.Fatalf("upload with the chained credentials: %v", err)
			}
			err = b.PutObject("user/mallory/chained.txt", strings.NewReader("x"))
			if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
				t.Fatalf("the session policy does not hold: %d %s", st, code)
			}
		})
	}
	// A permanent key with a SecurityToken is no STS credential.
	_, err := stsClientWithToken(t, emu, testAK, testSK, "CAISforged").AssumeRole(request())
	if codeOf(err) != "InvalidSecurityToken.MismatchWithAccessKey" {
		t.Fatalf("permanent key with a token: %v", err)
	}
}

// TestPresignV4Lifetime: x-oss-expires runs from 1 s to 7 days for a URL
// signed with the account's keys and to 12 hours for one signed with STS
// credentials.
func TestPresignV4Lifetime(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	c := assumeRole(t, emu, sessionPolicy)
	permanent := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	temporary := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret),
		oss.AuthVersion(oss.AuthV4), oss.SecurityToken(tea.StringValue(c.SecurityToken)))
	for _, tc := range []struct {
		name    string
		b       *oss.Bucket
		expires int64
		ok      bool
	}{
		{"keys, 7 days", permanent, 604800, true},
		{"keys, 7 days and 1 s", permanent, 604801, false},
		{"STS, 12 hours", temporary, 43200, true},
		{"STS, 12 hours and 1 s", temporary, 43201, false},
		{"STS, 7 days", temporary, 604800, false},
		{"STS, 1 s", temporary, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.b.SignURL("user/eric/life.txt", oss.HTTPPut, tc.expires)
			if err != nil {
				t.Fatal(err)
			}
			status, code, resp, body := rawRequest(t, http.MethodPut, u, nil, "x")
			if tc.ok && status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			if !tc.ok && (status != 400 || code != "InvalidArgument" || resp.Header.Get("x-oss-ec") != "0002-00000232" ||
				!strings.Contains(body, "<ArgumentName>x-oss-expires</ArgumentName>")) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
}

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
	for _, v := range []struct {
		name string
		opt  oss.ClientOption
	}{{"V1", oss.AuthVersion(oss.AuthV1)}, {"V4", oss.AuthVersion(oss.AuthV4)}} {
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
