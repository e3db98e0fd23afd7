package caddyoss

// An independent reading of protocol §2 used to check presigned URLs: it
// is validated against the published vectors first (TestRefSignVectors),
// then used to check what the presign route returns.

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"testing"
)

func refURIEncode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/') {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

type refKV struct{ k, v string }

// refV4Query returns the V4 query-auth signature for a method, bucket,
// decoded key, decoded query (without x-oss-signature) and headers.
func refV4Query(secret, method, bucket, key, region string, query []refKV, headers map[string]string, additional []string) string {
	enc := make([]refKV, 0, len(query))
	var date, scope string
	for _, p := range query {
		enc = append(enc, refKV{refURIEncode(p.k, false), refURIEncode(p.v, false)})
		if p.k == "x-oss-date" {
			date = p.v
			scope = p.v[:8]
		}
	}
	sort.Slice(enc, func(i, j int) bool { return enc[i].k < enc[j].k })
	var cq []string
	for _, p := range enc {
		if p.v == "" {
			cq = append(cq, p.k)
		} else {
			cq = append(cq, p.k+"="+p.v)
		}
	}
	lh := map[string]string{}
	for k, v := range headers {
		lh[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	add := map[string]bool{}
	for _, a := range additional {
		add[strings.ToLower(a)] = true
	}
	var names []string
	for n := range lh {
		if strings.HasPrefix(n, "x-oss-") || n == "content-type" || n == "content-md5" || add[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n + ":" + lh[n] + "\n")
	}
	var addl []string
	for a := range add {
		addl = append(addl, a)
	}
	sort.Strings(addl)
	creq := strings.Join([]string{method, refURIEncode("/"+bucket+"/"+key, true),
		strings.Join(cq, "&"), ch.String(), strings.Join(addl, ";"), "UNSIGNED-PAYLOAD"}, "\n")
	sum := sha256.Sum256([]byte(creq))
	sts := "OSS4-HMAC-SHA256\n" + date + "\n" + scope + "/" + region + "/oss/aliyun_v4_request\n" + hex.EncodeToString(sum[:])
	mac := func(k []byte, m string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(m)); return h.Sum(nil) }
	k := mac([]byte("aliyun_v4"+secret), scope)
	k = mac(k, region)
	k = mac(k, "oss")
	k = mac(k, "aliyun_v4_request")
	return hex.EncodeToString(mac(k, sts))
}

// refV1 returns base64(HMAC-SHA1(secret, stringToSign)).
func refV1(secret, stringToSign string) string {
	h := hmac.New(sha1.New, []byte(secret))
	h.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// refV1PresignString builds the V1 string to sign of a presigned URL from
// its decoded query (protocol §2.1), for the sub-resources presigned
// uploads use.
func refV1PresignString(method, contentType, bucket, key string, q url.Values) string {
	sub := []string{}
	// Sorted by name (byte order).
	for _, name := range []string{"callback", "callback-var", "partNumber", "response-content-disposition", "security-token", "uploadId", "versionId"} {
		if v, ok := q[name]; ok {
			if v[0] == "" {
				sub = append(sub, name)
			} else {
				sub = append(sub, name+"="+v[0])
			}
		}
	}
	res := "/" + bucket + "/" + key
	if len(sub) > 0 {
		res += "?" + strings.Join(sub, "&")
	}
	return method + "\n\n" + contentType + "\n" + q.Get("Expires") + "\n" + res
}

var vectorQuery = []refKV{{"param1", "value1"}, {"+param1", "value3"}, {"|param1", "value4"}, {"+param2", ""}, {"|param2", ""}, {"param2", ""}}

func withV4(q []refKV, extra ...refKV) []refKV {
	return append(append([]refKV{}, q...), extra...)
}

func TestRefSignVectors(t *testing.T) {
	b6cb := "eyJjYWxsYmFja1VybCI6Imh0dHBzOi8vYXBwLmV4YW1wbGUuY29tL29zcy9jYWxsYmFjayIsImNhbGxiYWNrQm9keSI6ImJ1Y2tldD0ke2J1Y2tldH0mb2JqZWN0PSR7b2JqZWN0fSZzaXplPSR7c2l6ZX0mdWlkPSR7eDp1aWR9IiwiY2FsbGJhY2tCb2R5VHlwZSI6ImFwcGxpY2F0aW9uL3gtd3d3LWZvcm0tdXJsZW5jb2RlZCJ9"
	hdrB := map[string]string{"x-oss-head1": "value", "abc": "value", "ZAbc": "value", "XYZ": "value", "content-type": "application/octet-stream"}
	cred := func(ak, date string) refKV {
		return refKV{"x-oss-credential", ak + "/" + date + "/cn-hangzhou/oss/aliyun_v4_request"}
	}
	v4 := refKV{"x-oss-signature-version", "OSS4-HMAC-SHA256"}
	tests := []struct {
		name, got, want string
	}{
		{"B1", refV4Query("sk", "PUT", "bucket", "1234+-/123/1.txt", "cn-hangzhou",
			withV4(vectorQuery, v4, cred("ak", "20231217"), refKV{"x-oss-date", "20231217T025437Z"}, refKV{"x-oss-expires", "599"}), hdrB, nil),
			"a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"},
		{"B2", refV4Query("sk", "PUT", "bucket", "1234+-/123/1.txt", "cn-hangzhou",
			withV4(vectorQuery, v4, cred("ak", "20231217"), refKV{"x-oss-date", "20231217T035628Z"}, refKV{"x-oss-expires", "599"}, refKV{"x-oss-security-token", "token"}), hdrB, nil),
			"3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5"},
		{"B3", refV4Query("sk", "PUT", "bucket", "1234+-/123/1.txt", "cn-hangzhou",
			withV4(vectorQuery, v4, cred("ak", "20231217"), refKV{"x-oss-date", "20231217T033009Z"}, refKV{"x-oss-expires", "599"}, refKV{"x-oss-additional-headers", "abc;zabc"}), hdrB, []string{"abc", "zabc"}),
			"6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"},
		{"B4", refV4Query("yourAccessKeySecret", "GET", "examplebucket", "exampleobject", "cn-hangzhou",
			[]refKV{v4, cred("LTAI****************", "20250701"), {"x-oss-date", "20250701T024410Z"}, {"x-oss-expires", "3600"}}, nil, nil),
			"69023ccc03d7fa2ff1571d8bda9c3263ed2d32cc1d2ee431f08aefb43dd2d182"},
		{"B4-put", refV4Query("yourAccessKeySecret", "PUT", "examplebucket", "exampleobject", "cn-hangzhou",
			[]refKV{v4, cred("LTAI****************", "20250701"), {"x-oss-date", "20250701T024410Z"}, {"x-oss-expires", "3600"}}, map[string]string{"Content-Type": "text/plain"}, nil),
			"c7845a547fbd470020ee8ff22fa03d720e5e1b0e88a1e18de4afc32791fe8285"},
		{"B5", refV4Query("accesskeysecret", "PUT", "examplebucket", "exampleobject", "cn-hangzhou",
			[]refKV{v4, cred("accesskeyid", "20231203"), {"x-oss-date", "20231203T121212Z"}, {"x-oss-expires", "86400"}, {"x-oss-additional-headers", "host"}},
			map[string]string{"x-oss-meta-author": "alice", "x-oss-meta-magic": "abracadabra", "host": "examplebucket.oss-cn-hangzhou.aliyuncs.com"}, []string{"host"}),
			"2c6c9f10d8950fb150290ef6f42570e33cd45d6a57ec7887de75fa2ec45b4c72"},
		{"B6", refV4Query("TestTemporaryAccessKeySecret", "PUT", "examplebucket", "user/eric/photo 1.png", "cn-hangzhou",
			[]refKV{{"callback", b6cb}, {"callback-var", "eyJ4OnVpZCI6IjEyMzQ1In0="}, v4, cred("STS.NTestTemporaryAccessKeyId", "20231203"),
				{"x-oss-date", "20231203T121212Z"}, {"x-oss-expires", "900"}, {"x-oss-security-token", "CAIS1234TestSecurityToken=="}},
			map[string]string{"Content-Type": "image/png"}, nil),
			"21c5c5b6ca8b4b49051799bd03be4c102d909406735003a0de10d2dedf88ee3f"},
		{"C6", refV1("sk", refV1PresignString("GET", "", "bucket", "key", url.Values{"Expires": {"1699807420"}, "versionId": {"versionId"}})),
			"dcLTea+Yh9ApirQ8o8dOPqtvJXQ="},
		{"C7", refV1("sk", refV1PresignString("GET", "", "bucket", "key+123", url.Values{"Expires": {"1699808204"}, "versionId": {"versionId"}, "security-token": {"token"}})),
			"jzKYRrM5y6Br0dRFPaTGOsbrDhY="},
		{"C9-put", refV1("OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV", refV1PresignString("PUT", "text/plain", "test_bucket", "test_object_key", url.Values{"Expires": {"1547105286"}})),
			"qEYcrQ8CvOxaqVZZ8Kcw+3pf2EA="},
		{"C10", refV1("TestTemporaryAccessKeySecret", refV1PresignString("PUT", "image/png", "examplebucket", "user/eric/photo 1.png",
			url.Values{"Expires": {"1701609132"}, "callback": {b6cb}, "callback-var": {"eyJ4OnVpZCI6IjEyMzQ1In0="}, "security-token": {"CAIS1234TestSecurityToken=="}})),
			"VMuPhRBfiHZODMzPkdK3WD69AUY="},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

// refPresignV4 recomputes the x-oss-signature of a presigned PUT URL from
// its own query, with the reference signer.
func refPresignV4(secret, bucket, key, contentType string, q url.Values) string {
	var query []refKV
	for k, vs := range q {
		if k != "x-oss-signature" {
			query = append(query, refKV{k, vs[0]})
		}
	}
	headers := map[string]string{}
	if contentType != "" { // a request without the header, as for an upload part
		headers["Content-Type"] = contentType
	}
	return refV4Query(secret, "PUT", bucket, key, "cn-hangzhou", query, headers, nil)
}
