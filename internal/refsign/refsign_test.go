package refsign

import (
	"net/url"
	"testing"
)

var vectorQuery = []KV{{"param1", "value1"}, {"+param1", "value3"}, {"|param1", "value4"}, {"+param2", ""}, {"|param2", ""}, {"param2", ""}}

func withV4(q []KV, extra ...KV) []KV {
	return append(append([]KV{}, q...), extra...)
}

func TestRefSignVectors(t *testing.T) {
	b6cb := "eyJjYWxsYmFja1VybCI6Imh0dHBzOi8vYXBwLmV4YW1wbGUuY29tL29zcy9jYWxsYmFjayIsImNhbGxiYWNrQm9keSI6ImJ1Y2tldD0ke2J1Y2tldH0mb2JqZWN0PSR7b2JqZWN0fSZzaXplPSR7c2l6ZX0mdWlkPSR7eDp1aWR9IiwiY2FsbGJhY2tCb2R5VHlwZSI6ImFwcGxpY2F0aW9uL3gtd3d3LWZvcm0tdXJsZW5jb2RlZCJ9"
	hdrB := map[string]string{"x-oss-head1": "value", "abc": "value", "ZAbc": "value", "XYZ": "value", "content-type": "application/octet-stream"}
	cred := func(ak, date string) KV {
		return KV{"x-oss-credential", ak + "/" + date + "/cn-hangzhou/oss/aliyun_v4_request"}
	}
	v4 := KV{"x-oss-signature-version", "OSS4-HMAC-SHA256"}
	tests := []struct {
		name, got, want string
	}{
		{"B1", V4Query("sk", "PUT", "bucket", "1234+-/123/1.txt", "cn-hangzhou",
			withV4(vectorQuery, v4, cred("ak", "20231217"), KV{"x-oss-date", "20231217T025437Z"}, KV{"x-oss-expires", "599"}), hdrB, nil),
			"a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"},
		{"B2", V4Query("sk", "PUT", "bucket", "1234+-/123/1.txt", "cn-hangzhou",
			withV4(vectorQuery, v4, cred("ak", "20231217"), KV{"x-oss-date", "20231217T035628Z"}, KV{"x-oss-expires", "599"}, KV{"x-oss-security-token", "token"}), hdrB, nil),
			"3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5"},
		{"B3", V4Query("sk", "PUT", "bucket", "1234+-/123/1.txt", "cn-hangzhou",
			withV4(vectorQuery, v4, cred("ak", "20231217"), KV{"x-oss-date", "20231217T033009Z"}, KV{"x-oss-expires", "599"}, KV{"x-oss-additional-headers", "abc;zabc"}), hdrB, []string{"abc", "zabc"}),
			"6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"},
		{"B4", V4Query("yourAccessKeySecret", "GET", "examplebucket", "exampleobject", "cn-hangzhou",
			[]KV{v4, cred("LTAI****************", "20250701"), {"x-oss-date", "20250701T024410Z"}, {"x-oss-expires", "3600"}}, nil, nil),
			"69023ccc03d7fa2ff1571d8bda9c3263ed2d32cc1d2ee431f08aefb43dd2d182"},
		{"B4-put", V4Query("yourAccessKeySecret", "PUT", "examplebucket", "exampleobject", "cn-hangzhou",
			[]KV{v4, cred("LTAI****************", "20250701"), {"x-oss-date", "20250701T024410Z"}, {"x-oss-expires", "3600"}}, map[string]string{"Content-Type": "text/plain"}, nil),
			"c7845a547fbd470020ee8ff22fa03d720e5e1b0e88a1e18de4afc32791fe8285"},
		{"B5", V4Query("accesskeysecret", "PUT", "examplebucket", "exampleobject", "cn-hangzhou",
			[]KV{v4, cred("accesskeyid", "20231203"), {"x-oss-date", "20231203T121212Z"}, {"x-oss-expires", "86400"}, {"x-oss-additional-headers", "host"}},
			map[string]string{"x-oss-meta-author": "alice", "x-oss-meta-magic": "abracadabra", "host": "examplebucket.oss-cn-hangzhou.aliyuncs.com"}, []string{"host"}),
			"2c6c9f10d8950fb150290ef6f42570e33cd45d6a57ec7887de75fa2ec45b4c72"},
		{"B6", V4Query("TestTemporaryAccessKeySecret", "PUT", "examplebucket", "user/eric/photo 1.png", "cn-hangzhou",
			[]KV{{"callback", b6cb}, {"callback-var", "eyJ4OnVpZCI6IjEyMzQ1In0="}, v4, cred("STS.NTestTemporaryAccessKeyId", "20231203"),
				{"x-oss-date", "20231203T121212Z"}, {"x-oss-expires", "900"}, {"x-oss-security-token", "CAIS1234TestSecurityToken=="}},
			map[string]string{"Content-Type": "image/png"}, nil),
			"21c5c5b6ca8b4b49051799bd03be4c102d909406735003a0de10d2dedf88ee3f"},
		{"C6", V1("sk", V1PresignString("GET", "", "bucket", "key", url.Values{"Expires": {"1699807420"}, "versionId": {"versionId"}})),
			"dcLTea+Yh9ApirQ8o8dOPqtvJXQ="},
		{"C7", V1("sk", V1PresignString("GET", "", "bucket", "key+123", url.Values{"Expires": {"1699808204"}, "versionId": {"versionId"}, "security-token": {"token"}})),
			"jzKYRrM5y6Br0dRFPaTGOsbrDhY="},
		{"C9-put", V1("OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV", V1PresignString("PUT", "text/plain", "test_bucket", "test_object_key", url.Values{"Expires": {"1547105286"}})),
			"qEYcrQ8CvOxaqVZZ8Kcw+3pf2EA="},
		{"C10", V1("TestTemporaryAccessKeySecret", V1PresignString("PUT", "image/png", "examplebucket", "user/eric/photo 1.png",
			url.Values{"Expires": {"1701609132"}, "callback": {b6cb}, "callback-var": {"eyJ4OnVpZCI6IjEyMzQ1In0="}, "security-token": {"CAIS1234TestSecurityToken=="}})),
			"VMuPhRBfiHZODMzPkdK3WD69AUY="},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

// PostObject policy signatures: D1 (V1) and D2, D4 (V4) of vectors.md.
func TestRefPostVectors(t *testing.T) {
	d1 := "eyJjb25kaXRpb25zIjpbWyJjb250ZW50LWxlbmd0aC1yYW5nZSIsMCwxMDQ4NTc2MF0seyJidWNrZXQiOiJhaGFoYSJ9LHsiQSI6ImEifSx7ImtleSI6IkFCQyJ9XSwiZXhwaXJhdGlvbiI6IjIwMTMtMTItMDFUMTI6MDA6MDBaIn0="
	d4 := "eyJleHBpcmF0aW9uIjoiMjAyMy0xMi0wM1QxMzowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W3siYnVja2V0IjoiZXhhbXBsZWJ1Y2tldCJ9LHsieC1vc3Mtc2lnbmF0dXJlLXZlcnNpb24iOiJPU1M0LUhNQUMtU0hBMjU2In0seyJ4LW9zcy1jcmVkZW50aWFsIjoiTFRBSTV0RXhhbXBsZUFjY2Vzc0tleUlkLzIwMjMxMjAzL2NuLWhhbmd6aG91L29zcy9hbGl5dW5fdjRfcmVxdWVzdCJ9LHsieC1vc3MtZGF0ZSI6IjIwMjMxMjAzVDEyMTIxMloifSxbImNvbnRlbnQtbGVuZ3RoLXJhbmdlIiwxLDEwNDg1NzYwXSxbImVxIiwiJHN1Y2Nlc3NfYWN0aW9uX3N0YXR1cyIsIjIwMSJdLFsic3RhcnRzLXdpdGgiLCIka2V5IiwidXNlci9lcmljLyJdLFsiaW4iLCIkY29udGVudC10eXBlIixbImltYWdlL2pwZyIsImltYWdlL3BuZyJdXSxbIm5vdC1pbiIsIiRjYWNoZS1jb250cm9sIixbIm5vLWNhY2hlIl1dXX0="
	tests := []struct{ name, got, want string }{
		{"D1 v1", V1("OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV", d1), "W835KpLsL6k1/oo28RcsEflB6hw="},
		{"D2 v4", PostV4("yourAccessKeySecret", "20250722", "cn-hangzhou", d1), "35870516a49acdd2db08c8225d2045d4f58c846df5c8b019d23307b0b29c423b"},
		{"D4 v4", PostV4("yourAccessKeySecret", "20231203", "cn-hangzhou", d4), "5c1f8008e2bc6d2428e3fe0d7f87d66c07e3f502478786bcf5d5d3b659bcdc26"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}
