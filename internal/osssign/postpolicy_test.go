package osssign

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// signV1 returns base64(HMAC-SHA1(secret, msg)), the V1 signature of a POST
// policy (protocol §1.5), with the pooled HMACs the signer uses.
func signV1(secret, msg string) string {
	var c v1MACCache
	return base64.StdEncoding.EncodeToString(c.appendSum(nil, secret, []byte(msg)))
}

func TestPostSignatureVectors(t *testing.T) {
	keys := new(v4KeyCache)
	d1 := "eyJjb25kaXRpb25zIjpbWyJjb250ZW50LWxlbmd0aC1yYW5nZSIsMCwxMDQ4NTc2MF0seyJidWNrZXQiOiJhaGFoYSJ9LHsiQSI6ImEifSx7ImtleSI6IkFCQyJ9XSwiZXhwaXJhdGlvbiI6IjIwMTMtMTItMDFUMTI6MDA6MDBaIn0="
	d4 := "eyJleHBpcmF0aW9uIjoiMjAyMy0xMi0wM1QxMzowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W3siYnVja2V0IjoiZXhhbXBsZWJ1Y2tldCJ9LHsieC1vc3Mtc2lnbmF0dXJlLXZlcnNpb24iOiJPU1M0LUhNQUMtU0hBMjU2In0seyJ4LW9zcy1jcmVkZW50aWFsIjoiTFRBSTV0RXhhbXBsZUFjY2Vzc0tleUlkLzIwMjMxMjAzL2NuLWhhbmd6aG91L29zcy9hbGl5dW5fdjRfcmVxdWVzdCJ9LHsieC1vc3MtZGF0ZSI6IjIwMjMxMjAzVDEyMTIxMloifSxbImNvbnRlbnQtbGVuZ3RoLXJhbmdlIiwxLDEwNDg1NzYwXSxbImVxIiwiJHN1Y2Nlc3NfYWN0aW9uX3N0YXR1cyIsIjIwMSJdLFsic3RhcnRzLXdpdGgiLCIka2V5IiwidXNlci9lcmljLyJdLFsiaW4iLCIkY29udGVudC10eXBlIixbImltYWdlL2pwZyIsImltYWdlL3BuZyJdXSxbIm5vdC1pbiIsIiRjYWNoZS1jb250cm9sIixbIm5vLWNhY2hlIl1dXX0="
	tests := []struct{ name, got, want string }{
		{"D1 v1", signV1("OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV", d1), "W835KpLsL6k1/oo28RcsEflB6hw="},
		{"D2 v4", keys.sign("yourAccessKeySecret", "20250722", "cn-hangzhou", []byte(d1)), "35870516a49acdd2db08c8225d2045d4f58c846df5c8b019d23307b0b29c423b"},
		{"D4 v4", keys.sign("yourAccessKeySecret", "20231203", "cn-hangzhou", []byte(d4)), "5c1f8008e2bc6d2428e3fe0d7f87d66c07e3f502478786bcf5d5d3b659bcdc26"},
		// again, from a pooled HMAC, and in two writes
		{"D4 v4 pooled", keys.sign("yourAccessKeySecret", "20231203", "cn-hangzhou", []byte(d4[:100]), []byte(d4[100:])), "5c1f8008e2bc6d2428e3fe0d7f87d66c07e3f502478786bcf5d5d3b659bcdc26"},
		{"D4 signing key", hexOf(SigningKeyV4("yourAccessKeySecret", "20231203", "cn-hangzhou")), "084d33921e59a5b6e8777f63b55f4a1905d49ac7af6007b45f1bf67f69c54316"},
		{"D4 cached key", hexOf(keys.get("yourAccessKeySecret", "20231203", "cn-hangzhou")), "084d33921e59a5b6e8777f63b55f4a1905d49ac7af6007b45f1bf67f69c54316"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// The policy builder must produce the published policies byte for byte
// when given their inputs, and sign them as the vectors say.
func TestBuildPostPolicyVectors(t *testing.T) {
	exp := time.Date(2023, 12, 3, 13, 0, 0, 0, time.UTC)
	signAt := time.Date(2023, 12, 3, 12, 12, 12, 0, time.UTC)
	tests := []struct {
		name   string
		in     Policy
		creds  Credentials
		policy string
		sig    string
		fields []Field
	}{
		{
			name:   "D3 v1",
			in:     Policy{Version: V1, Bucket: "examplebucket", Prefix: "user/eric/", Expiration: exp, MinSize: 1, MaxSize: 10485760},
			creds:  Credentials{ID: "LTAI5tExampleAccessKeyId", Secret: "yourAccessKeySecret"},
			policy: "eyJleHBpcmF0aW9uIjoiMjAyMy0xMi0wM1QxMzowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W3siYnVja2V0IjoiZXhhbXBsZWJ1Y2tldCJ9LFsiY29udGVudC1sZW5ndGgtcmFuZ2UiLDEsMTA0ODU3NjBdLFsic3RhcnRzLXdpdGgiLCIka2V5IiwidXNlci9lcmljLyJdXX0=",
			sig:    "u21B3iBoxtVSM43XVxATOp32cag=",
			fields: []Field{{"policy", ""}, {"OSSAccessKeyId", "LTAI5tExampleAccessKeyId"}, {"Signature", "u21B3iBoxtVSM43XVxATOp32cag="}},
		},
		{
			name:   "D5 v4 sts",
			in:     Policy{Version: V4, Bucket: "examplebucket", Region: "cn-hangzhou", Prefix: "uploads/", Expiration: exp},
			creds:  Credentials{ID: "STS.NTestTemporaryAccessKeyId", Secret: "TestTemporaryAccessKeySecret", Token: "CAIS1234TestSecurityToken=="},
			policy: "eyJleHBpcmF0aW9uIjoiMjAyMy0xMi0wM1QxMzowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W3siYnVja2V0IjoiZXhhbXBsZWJ1Y2tldCJ9LHsieC1vc3Mtc2lnbmF0dXJlLXZlcnNpb24iOiJPU1M0LUhNQUMtU0hBMjU2In0seyJ4LW9zcy1jcmVkZW50aWFsIjoiU1RTLk5UZXN0VGVtcG9yYXJ5QWNjZXNzS2V5SWQvMjAyMzEyMDMvY24taGFuZ3pob3Uvb3NzL2FsaXl1bl92NF9yZXF1ZXN0In0seyJ4LW9zcy1zZWN1cml0eS10b2tlbiI6IkNBSVMxMjM0VGVzdFNlY3VyaXR5VG9rZW49PSJ9LHsieC1vc3MtZGF0ZSI6IjIwMjMxMjAzVDEyMTIxMloifSxbInN0YXJ0cy13aXRoIiwiJGtleSIsInVwbG9hZHMvIl1dfQ==",
			sig:    "fb73dd388c65cc5a61a893a0f9724495585bff0ce968ddb297c571019ad794bf",
			fields: []Field{{"policy", ""}, {"x-oss-signature-version", "OSS4-HMAC-SHA256"},
				{"x-oss-credential", "STS.NTestTemporaryAccessKeyId/20231203/cn-hangzhou/oss/aliyun_v4_request"},
				{"x-oss-date", "20231203T121212Z"}, {"x-oss-signature", "fb73dd388c65cc5a61a893a0f9724495585bff0ce968ddb297c571019ad794bf"},
				{"x-oss-security-token", "CAIS1234TestSecurityToken=="}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pp, err := new(Signer).SignPolicy(tc.in, tc.creds, signAt)
			if err != nil {
				t.Fatal(err)
			}
			if pp.Policy != tc.policy {
				js, _ := base64.StdEncoding.DecodeString(pp.Policy)
				t.Fatalf("policy differs:\n got %s", js)
			}
			if pp.Signature != tc.sig {
				t.Errorf("signature = %s, want %s", pp.Signature, tc.sig)
			}
			tc.fields[0].Value = tc.policy
			if len(pp.Fields) != len(tc.fields) {
				t.Fatalf("fields = %v, want %v", pp.Fields, tc.fields)
			}
			for i := range tc.fields {
				if pp.Fields[i] != tc.fields[i] {
					t.Errorf("field %d = %v, want %v", i, pp.Fields[i], tc.fields[i])
				}
			}
		})
	}
}

// Everything a configured handler pins goes into the policy OSS enforces.
func TestBuildPostPolicyConditions(t *testing.T) {
	in := Policy{
		Version: V4, Bucket: "b-1", Region: "cn-hangzhou", Prefix: "u/7/",
		Expiration: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), MaxSize: 100, Status: "200",
		ContentType: "image/png", Callback: "Y2I=", Vars: map[string]string{"x:user": "7", "x:a": "b"},
	}
	pp, err := new(Signer).SignPolicy(in, Credentials{ID: "id", Secret: "s"}, time.Date(2029, 12, 31, 23, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := base64.StdEncoding.DecodeString(pp.Policy)
	want := `{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{"bucket":"b-1"},{"x-oss-signature-version":"OSS4-HMAC-SHA256"},{"x-oss-credential":"id/20291231/cn-hangzhou/oss/aliyun_v4_request"},{"x-oss-date":"20291231T230000Z"},["content-length-range",0,100],["eq","$success_action_status","200"],["starts-with","$key","u/7/"],["eq","$content-type","image/png"],["eq","$x-oss-content-type","image/png"],["eq","$callback","Y2I="],["eq","$x:a","b"],["eq","$x:user","7"]]}`
	if string(js) != want {
		t.Errorf("policy:\n got %s\nwant %s", js, want)
	}
	var names []string
	for _, f := range pp.Fields {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "policy,x-oss-signature-version,x-oss-credential,x-oss-date,x-oss-signature,success_action_status,Content-Type,x-oss-content-type,callback,x:a,x:user" {
		t.Errorf("fields = %s", got)
	}
}

// TestBuildPostPolicyMatchesEncoder builds policies from generated inputs
// (keys, types and variables with quotes, backslashes, control and
// non-ASCII characters, '$' and wildcards) and checks each byte for byte
// against encoding/json writing the same conditions, and each signature
// against HMACs computed here.
func TestBuildPostPolicyMatchesEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	odd := []string{"a", "/", `"`, `\`, "\x00", "\x1f", "\u2028", "é", "世", "$", "${filename}", "*", "?", " ", "<&>", "\xff"}
	str := func() string {
		var b strings.Builder
		for n := rng.IntN(6); n >= 0; n-- {
			b.WriteString(odd[rng.IntN(len(odd))])
		}
		return b.String()
	}
	for i := range 500 {
		in := Policy{
			Version: []string{V1, V4}[i%2], Bucket: "b-" + strconv.Itoa(i), Region: "cn-" + str(),
			Prefix: "u/" + str() + "/", Expiration: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)),
			MinSize: rng.Int64N(3), MaxSize: rng.Int64N(3) * 1000,
		}
		if rng.IntN(2) == 0 {
			in.Key = in.Prefix + str()
		}
		if rng.IntN(2) == 0 {
			in.Status = "201"
		}
		if rng.IntN(2) == 0 {
			in.ContentType = "image/" + str()
		}
		if rng.IntN(2) == 0 {
			in.ACL, in.StorageClass = "default", "IA"
		}
		if rng.IntN(2) == 0 {
			in.Callback = "Y2I" + str()
			in.Vars = map[string]string{"x:" + str(): str(), "x:b": str()}
		}
		c := Credentials{ID: "id" + str(), Secret: "s" + str()}
		if rng.IntN(2) == 0 {
			c.Token = "CAIS" + str()
		}
		now := in.Expiration.Add(-time.Duration(rng.Int64N(1e12)))

		type simple = map[string]string
		conds := []any{simple{"bucket": in.Bucket}}
		date := now.UTC().Format("20060102T150405Z")
		if in.Version == V4 {
			conds = append(conds, simple{"x-oss-signature-version": V4Algorithm},
				simple{"x-oss-credential": c.ID + "/" + date[:8] + "/" + in.Region + "/oss/aliyun_v4_request"})
		}
		if c.Token != "" {
			conds = append(conds, simple{"x-oss-security-token": c.Token})
		}
		if in.Version == V4 {
			conds = append(conds, simple{"x-oss-date": date})
		}
		if in.MaxSize > 0 || in.MinSize > 0 {
			maxSize := in.MaxSize
			if maxSize == 0 {
				maxSize = MaxObjectSize
			}
			conds = append(conds, []any{"content-length-range", in.MinSize, maxSize})
		}
		eq := func(field, value string) { conds = append(conds, []any{"eq", "$" + field, value}) }
		if in.Status != "" {
			eq("success_action_status", in.Status)
		}
		if in.Key != "" {
			eq("key", in.Key)
		} else {
			conds = append(conds, []any{"starts-with", "$key", in.Prefix})
		}
		if in.ContentType != "" {
			eq("content-type", in.ContentType)
			eq("x-oss-content-type", in.ContentType)
		}
		if in.ACL != "" {
			eq("x-oss-object-acl", in.ACL)
			eq("x-oss-storage-class", in.StorageClass)
		}
		if in.Callback != "" {
			eq("callback", in.Callback)
			names := make([]string, 0, len(in.Vars))
			for k := range in.Vars {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				eq(k, in.Vars[k])
			}
		}
		want, err := jsonw.Marshal(struct {
			Expiration string `json:"expiration"`
			Conditions []any  `json:"conditions"`
		}{in.Expiration.UTC().Format("2006-01-02T15:04:05.000Z"), conds})
		if err != nil {
			t.Fatal(err)
		}

		pp, err := new(Signer).SignPolicy(in, c, now)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := base64.StdEncoding.DecodeString(pp.Policy); string(got) != string(want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
		if base64.StdEncoding.EncodeToString(want) != pp.Policy {
			t.Fatalf("case %d: policy base64 %s", i, pp.Policy)
		}
		var sig string
		if in.Version == V4 {
			k := []byte("aliyun_v4" + c.Secret)
			for _, part := range []string{date[:8], in.Region, "oss", "aliyun_v4_request", pp.Policy} {
				m := hmac.New(sha256.New, k)
				m.Write([]byte(part))
				k = m.Sum(nil)
			}
			sig = hex.EncodeToString(k)
		} else {
			m := hmac.New(sha1.New, []byte(c.Secret))
			m.Write([]byte(pp.Policy))
			sig = base64.StdEncoding.EncodeToString(m.Sum(nil))
		}
		if pp.Signature != sig {
			t.Fatalf("case %d (%s): signature %s, want %s", i, in.Version, pp.Signature, sig)
		}
	}
}
