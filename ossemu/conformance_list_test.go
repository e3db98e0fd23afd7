package ossemu_test

// ListObjects: delimiters and common prefixes, and encoding-type=url.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

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
