package osssign

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// V1URL is one V1 presigned URL to sign.
type V1URL struct {
	BaseURL     string // where the client sends the bytes, no trailing '/'
	Bucket      string
	Key         string    // the raw object key
	ContentType string    // signed when not empty
	Expires     time.Time // V1's Expires is absolute (unix seconds)
	// Params are extra signed query parameters, all of them V1
	// sub-resources (callback, callback-var, partNumber, uploadId), sorted
	// by name. An empty value is signed and sent as the bare name.
	Params [][2]string
}

// v1SecurityToken is the query parameter that carries an STS token in a
// V1 presigned URL; it is a sub-resource, so it is signed.
const v1SecurityToken = "security-token"

// AppendV1URL appends a V1 presigned URL for method (protocol
// §2.1) to dst and returns it:
//
//	<baseURL>/<key>?Expires=<unix>&OSSAccessKeyId=<id>&Signature=<sig>[&<params and security-token, sorted>]
//
// The string to sign is
//
//	method \n \n Content-Type \n Expires \n /bucket/key[?sub-resources]
//
// with the raw key and raw sub-resource values, the token among them. The
// key and every query value are escaped as aliyun-oss-go-sdk's SignURL
// escapes them in CNAME mode (url.QueryEscape with %20 for a space, so '/'
// in the key is sent as %2F), which OSS decodes back to the same key; the
// tests check the URL against the SDK's and an independent reference.
func (s *Signer) AppendV1URL(dst []byte, method string, in V1URL, c Credentials) []byte {
	expires := in.Expires.Unix()
	contentType := strings.TrimSpace(in.ContentType) // as the header arrives

	// The string to sign is written after dst's content, hashed, then
	// dropped: the URL takes its place.
	start := len(dst)
	b := append(dst, method...)
	b = append(b, "\n\n"...)
	b = append(b, contentType...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, expires, 10)
	b = append(b, "\n/"...)
	b = append(b, in.Bucket...)
	b = append(b, '/')
	b = append(b, in.Key...)
	if len(in.Params) > 0 || c.Token != "" {
		b = append(b, '?')
		b = appendV1Params(b, in.Params, c.Token, false)
	}
	b = s.v1.appendSum(b, c.Secret, b[start:])
	var sig [28]byte // base64 of the 20-byte HMAC-SHA1
	base64.StdEncoding.Encode(sig[:], b[len(b)-sha1.Size:])

	b = append(b[:start], in.BaseURL...)
	b = append(b, '/')
	b = AppendURIEncode(b, in.Key, false)
	b = append(b, "?Expires="...)
	b = strconv.AppendInt(b, expires, 10)
	b = append(b, "&OSSAccessKeyId="...)
	b = AppendURIEncode(b, c.ID, false)
	b = append(b, "&Signature="...)
	b = appendEscapedBase64(b, sig[:])
	if len(in.Params) > 0 || c.Token != "" {
		b = append(b, '&')
		b = appendV1Params(b, in.Params, c.Token, true)
	}
	return b
}

// appendV1Params appends params joined by '&', with the security token
// (when not empty) in its place by name, as name=value or, for an empty
// value, the bare name; escaped for a URL when escape is set, raw for the
// string to sign.
func appendV1Params(b []byte, params [][2]string, token string, escape bool) []byte {
	pending := token != ""
	for i, p := range params {
		if i > 0 {
			b = append(b, '&')
		}
		if pending && p[0] > v1SecurityToken {
			b = appendV1Param(b, v1SecurityToken, token, escape)
			b = append(b, '&')
			pending = false
		}
		b = appendV1Param(b, p[0], p[1], escape)
	}
	if pending {
		if len(params) > 0 {
			b = append(b, '&')
		}
		b = appendV1Param(b, v1SecurityToken, token, escape)
	}
	return b
}

func appendV1Param(b []byte, name, value string, escape bool) []byte {
	if !escape {
		b = append(b, name...)
		if value != "" {
			b = append(b, '=')
			b = append(b, value...)
		}
		return b
	}
	b = AppendURIEncode(b, name, false)
	if value != "" {
		b = append(b, '=')
		b = AppendURIEncode(b, value, false)
	}
	return b
}

// v1MACCache keeps, per secret, a pool of HMAC-SHA1s keyed with it, so a
// V1 signature allocates nothing for the hash.
type v1MACCache struct {
	mu    sync.RWMutex
	pools map[string]*sync.Pool
}

// maxCachedV1Secrets bounds the cache: rotating credentials (STS, RAM
// roles) add a secret each time.
const maxCachedV1Secrets = 64

func (c *v1MACCache) pool(secret string) *sync.Pool {
	c.mu.RLock()
	p, ok := c.pools[secret]
	c.mu.RUnlock()
	if ok {
		return p
	}
	key := []byte(secret)
	p = &sync.Pool{New: func() any { return hmac.New(sha1.New, key) }}
	c.mu.Lock()
	if q, ok := c.pools[secret]; ok {
		p = q
	} else {
		if c.pools == nil || len(c.pools) >= maxCachedV1Secrets {
			c.pools = make(map[string]*sync.Pool)
		}
		c.pools[secret] = p
	}
	c.mu.Unlock()
	return p
}

// appendSum appends HMAC-SHA1(secret, msg) to dst; msg may be part of
// dst. The sum goes to dst, not to a local array, which would escape.
func (c *v1MACCache) appendSum(dst []byte, secret string, msg []byte) []byte {
	p := c.pool(secret)
	m := p.Get().(hash.Hash)
	m.Reset()
	m.Write(msg)
	dst = m.Sum(dst)
	p.Put(m)
	return dst
}

// appendEscapedBase64 appends standard base64 escaped for a query value:
// '+', '/' and '=' as %2B, %2F and %3D.
func appendEscapedBase64(b, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '+':
			b = append(b, "%2B"...)
		case '/':
			b = append(b, "%2F"...)
		case '=':
			b = append(b, "%3D"...)
		default:
			b = append(b, c)
		}
	}
	return b
}
