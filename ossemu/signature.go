package ossemu

// Signature algorithms as the OSS and STS servers compute them when they
// check a request. They are written from the protocol description and
// checked against the published vectors; nothing here is shared with the
// plugin.

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

const (
	v4Algorithm      = "OSS4-HMAC-SHA256"
	v4Terminator     = "aliyun_v4_request"
	unsignedPayload  = "UNSIGNED-PAYLOAD"
	v4DateTimeLayout = "20060102T150405Z"
)

// percentEncode is RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~
// becomes %XX with upper-case hex; keepSlash leaves '/' alone.
func percentEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', keepSlash && c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// queryParam is one decoded query parameter, in the order received.
type queryParam struct{ name, value string }

// parseQuery decodes a raw query string keeping order and duplicates.
// Unlike url.ParseQuery it leaves '+' alone: OSS clients encode a space as
// %20 and a plus as %2B, and a bare '+' is a plus.
func parseQuery(raw string) []queryParam {
	var out []queryParam
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
		if v, err := url.PathUnescape(value); err == nil {
			value = v
		}
		out = append(out, queryParam{name, value})
	}
	return out
}

// firstParam returns the first value of name and whether it was present.
func firstParam(q []queryParam, name string) (string, bool) {
	for _, p := range q {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

// subResources are the query parameters V1 signatures include in the
// canonicalized resource (the union of the SDKs' lists); any parameter
// whose name starts with "x-oss-" is one too.
var subResources = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Fields(`acl uploads location cors logging website referer
		lifecycle delete append tagging objectMeta objectInfo uploadId partNumber security-token
		position img style styleName replication replicationProgress replicationLocation cname
		bucketInfo comp qos qosInfo live status vod startTime endTime symlink x-oss-process
		response-content-type response-content-language response-expires response-cache-control
		response-content-disposition response-content-encoding udf udfName udfImage udfId
		udfImageDesc udfApplication udfApplicationLog restore callback callback-var policy stat
		encryption versions versioning versionId requestPayment x-oss-request-payer
		x-oss-traffic-limit sequential inventory inventoryId continuation-token asyncFetch worm
		wormId wormExtend withHashContext x-oss-enable-md5 x-oss-enable-sha1 x-oss-enable-sha256
		x-oss-hash-ctx x-oss-md5-ctx transferAcceleration regionList cloudboxes x-oss-ac-source-ip
		x-oss-ac-subnet-mask x-oss-ac-vpc-id x-oss-ac-forward-allow metaQuery resourceGroup rtc
		x-oss-async-process responseHeader group link`) {
		m[s] = true
	}
	return m
}()

// canonicalResource is the V1 CanonicalizedResource: /bucket/key with the
// raw key, then the sub-resources sorted by name with decoded values.
func canonicalResource(bucket, key string, query []queryParam) string {
	res := "/"
	if bucket != "" {
		res = "/" + bucket + "/" + key
	}
	var subs []string
	seen := map[string]bool{}
	for _, p := range query {
		if !subResources[p.name] && !strings.HasPrefix(p.name, "x-oss-") || seen[p.name] {
			continue
		}
		seen[p.name] = true
		if p.value == "" {
			subs = append(subs, p.name)
		} else {
			subs = append(subs, p.name+"="+p.value)
		}
	}
	if len(subs) == 0 {
		return res
	}
	sort.Slice(subs, func(i, j int) bool { return subName(subs[i]) < subName(subs[j]) })
	return res + "?" + strings.Join(subs, "&")
}

func subName(s string) string {
	n, _, _ := strings.Cut(s, "=")
	return n
}

// canonicalOSSHeaders is the V1 CanonicalizedOSSHeaders block.
func canonicalOSSHeaders(h http.Header) string {
	vals := map[string][]string{}
	for name, vs := range h {
		ln := strings.ToLower(name)
		if !strings.HasPrefix(ln, "x-oss-") {
			continue
		}
		for _, v := range vs {
			vals[ln] = append(vals[ln], strings.TrimSpace(v))
		}
	}
	return headerBlock(vals)
}

// headerBlock writes "name:v1,v2\n" for each header, sorted by name: the
// canonical header layout of both signature versions.
func headerBlock(vals map[string][]string) string {
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + ":" + strings.Join(vals[n], ",") + "\n")
	}
	return b.String()
}

// v1StringToSign builds the V1 string to sign; dateSlot is the Date (or
// x-oss-date) header for header auth and the Expires value for URLs.
func v1StringToSign(method string, h http.Header, dateSlot, bucket, key string, query []queryParam) string {
	return method + "\n" + h.Get("Content-MD5") + "\n" + h.Get("Content-Type") + "\n" + dateSlot + "\n" +
		canonicalOSSHeaders(h) + canonicalResource(bucket, key, query)
}

func hmacSHA1Base64(secret, msg string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// v4Key is the V4 signing key for a secret, scope date, region and product.
func v4Key(secret, date, region, product string) []byte {
	k := hmacSHA256([]byte("aliyun_v4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, product)
	return hmacSHA256(k, v4Terminator)
}

// v4CanonicalRequest builds the V4 canonical request from what was
// received: method, bucket and decoded key, decoded query (minus
// x-oss-signature), headers and the additional header names.
func v4CanonicalRequest(method, bucket, key string, query []queryParam, h http.Header, host string, additional []string) string {
	uri := "/"
	if bucket != "" {
		uri = "/" + bucket + "/" + key
	}
	type kv struct{ k, v string }
	var q []kv
	for _, p := range query {
		if p.name == "x-oss-signature" {
			continue
		}
		q = append(q, kv{percentEncode(p.name, false), percentEncode(p.value, false)})
	}
	sort.SliceStable(q, func(i, j int) bool { return q[i].k < q[j].k })
	cq := make([]string, len(q))
	for i, p := range q {
		cq[i] = p.k
		if p.v != "" {
			cq[i] += "=" + p.v
		}
	}

	add := map[string]bool{}
	for _, a := range additional {
		add[strings.ToLower(strings.TrimSpace(a))] = true
	}
	vals := map[string][]string{}
	for name, vs := range h {
		ln := strings.ToLower(name)
		if ln == "content-type" || ln == "content-md5" || strings.HasPrefix(ln, "x-oss-") || add[ln] {
			for _, v := range vs {
				vals[ln] = append(vals[ln], strings.TrimSpace(v))
			}
		}
	}
	if add["host"] {
		vals["host"] = []string{host}
	}
	addNames := make([]string, 0, len(add))
	for n := range add {
		if n != "" {
			addNames = append(addNames, n)
		}
	}
	sort.Strings(addNames)

	payload := unsignedPayload
	if p := h.Get("x-oss-content-sha256"); p != "" {
		payload = p
	}
	return method + "\n" + percentEncode(uri, true) + "\n" + strings.Join(cq, "&") + "\n" +
		headerBlock(vals) + "\n" + strings.Join(addNames, ";") + "\n" + payload
}

// v4StringToSign wraps the hash of a canonical request with its scope.
func v4StringToSign(dateTime, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return v4Algorithm + "\n" + dateTime + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// rpcStringToSign is the Alibaba Cloud RPC (POP) signature v1 input over
// every parameter but Signature.
func rpcStringToSign(method string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return percentEncode(names[i], false) < percentEncode(names[j], false) })
	pairs := make([]string, len(names))
	for i, k := range names {
		pairs[i] = percentEncode(k, false) + "=" + percentEncode(params[k], false)
	}
	return method + "&%2F&" + percentEncode(strings.Join(pairs, "&"), false)
}

// rpcSignature is base64(HMAC-SHA1(secret+"&", stringToSign)).
func rpcSignature(secret, stringToSign string) string {
	return hmacSHA1Base64(secret+"&", stringToSign)
}
