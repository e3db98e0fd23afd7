// Package refsign is an independent reading of the OSS signing protocol
// (protocol.md §1 and §2), written for tests: plain, slow and separate
// from internal/osssign, which it checks. It is validated against the
// published vectors first (TestRefSignVectors), then used to check what
// the signer and the signing routes produce.
package refsign

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
)

// URIEncode percent-encodes s as V4 canonicalization does.
func URIEncode(s string, keepSlash bool) string {
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

// KV is one decoded query parameter.
type KV struct{ K, V string }

// V4Query returns the V4 query-auth signature for a method, bucket,
// decoded key, decoded query (without x-oss-signature) and headers.
func V4Query(secret, method, bucket, key, region string, query []KV, headers map[string]string, additional []string) string {
	enc := make([]KV, 0, len(query))
	var date, scope string
	for _, p := range query {
		enc = append(enc, KV{URIEncode(p.K, false), URIEncode(p.V, false)})
		if p.K == "x-oss-date" {
			date = p.V
			scope = p.V[:8]
		}
	}
	sort.Slice(enc, func(i, j int) bool { return enc[i].K < enc[j].K })
	var cq []string
	for _, p := range enc {
		if p.V == "" {
			cq = append(cq, p.K)
		} else {
			cq = append(cq, p.K+"="+p.V)
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
	creq := strings.Join([]string{method, URIEncode("/"+bucket+"/"+key, true),
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

// V1 returns base64(HMAC-SHA1(secret, stringToSign)).
func V1(secret, stringToSign string) string {
	h := hmac.New(sha1.New, []byte(secret))
	h.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// V1PresignString builds the V1 string to sign of a presigned URL from
// its decoded query (protocol §2.1), for the sub-resources presigned
// uploads use.
func V1PresignString(method, contentType, bucket, key string, q url.Values) string {
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

// PresignV4 recomputes the x-oss-signature of a presigned PUT URL from
// its own query, with the reference signer.
func PresignV4(secret, bucket, key, contentType string, q url.Values) string {
	var query []KV
	for k, vs := range q {
		if k != "x-oss-signature" {
			query = append(query, KV{k, vs[0]})
		}
	}
	headers := map[string]string{}
	if contentType != "" { // a request without the header, as for an upload part
		headers["Content-Type"] = contentType
	}
	return V4Query(secret, "PUT", bucket, key, "cn-hangzhou", query, headers, nil)
}

// PostV4 is the V4 signature of a PostObject policy's base64 text.
func PostV4(secret, date, region, policy string) string {
	mac := func(k []byte, m string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(m)); return h.Sum(nil) }
	k := mac([]byte("aliyun_v4"+secret), date)
	k = mac(k, region)
	k = mac(k, "oss")
	k = mac(k, "aliyun_v4_request")
	return hex.EncodeToString(mac(k, policy))
}
