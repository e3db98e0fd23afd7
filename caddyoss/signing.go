package caddyoss

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signature versions.
const (
	sigV1 = "v1"
	sigV4 = "v4"

	// v4Algorithm is the OSS V4 signing algorithm name.
	v4Algorithm = "OSS4-HMAC-SHA256"
)

// signV1 returns base64(HMAC-SHA1(secret, msg)), the V1 signature of a POST
// policy (protocol §1.5).
func signV1(secret, msg string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// v4SigningKey derives the OSS V4 signing key for a secret, a YYYYMMDD date
// and a region.
func v4SigningKey(secret, date, region string) []byte {
	k := hmacSHA256([]byte("aliyun_v4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "oss")
	return hmacSHA256(k, "aliyun_v4_request")
}

// v4KeyCache caches V4 signing keys per (secret, date, region): a key
// changes once a day, so signing a policy costs one HMAC instead of five.
// Each key keeps a pool of keyed HMACs, so a signature allocates nothing
// for the hash.
type v4KeyCache struct {
	mu   sync.RWMutex
	keys map[v4KeyID]*v4Key
}

type v4KeyID struct{ secret, date, region string }

type v4Key struct {
	key  []byte
	macs sync.Pool // hash.Hash keyed with key
}

// maxCachedV4Keys bounds the cache; rotating credentials (STS, RAM roles)
// add a key per secret, and old dates are useless after a day.
const maxCachedV4Keys = 64

func (c *v4KeyCache) entry(secret, date, region string) *v4Key {
	id := v4KeyID{secret, date, region}
	c.mu.RLock()
	k, ok := c.keys[id]
	c.mu.RUnlock()
	if ok {
		return k
	}
	k = &v4Key{key: v4SigningKey(secret, date, region)}
	k.macs.New = func() any { return hmac.New(sha256.New, k.key) }
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxCachedV4Keys {
		c.keys = make(map[v4KeyID]*v4Key)
	}
	c.keys[id] = k
	c.mu.Unlock()
	return k
}

// get returns the signing key.
func (c *v4KeyCache) get(secret, date, region string) []byte {
	return c.entry(secret, date, region).key
}

// sign returns hex(HMAC-SHA256(signing key, parts...)).
func (c *v4KeyCache) sign(secret, date, region string, parts ...[]byte) string {
	k := c.entry(secret, date, region)
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	for _, p := range parts {
		m.Write(p)
	}
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.Sum(sum[:0]))
	k.macs.Put(m)
	return string(out[:])
}

// uriEncode appends s percent-encoded as OSS V4 canonicalizes it: every
// byte but A-Z a-z 0-9 - _ . ~ (and '/' when keepSlash) as %XX, upper case.
func uriEncode(b []byte, s string, keepSlash bool) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/') {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
		}
	}
	return b
}

// presignV4Input is one V4 presigned PUT URL to sign.
type presignV4Input struct {
	baseURL     string // where the client sends the bytes, no trailing '/'
	bucket      string
	region      string
	key         string
	contentType string
	expires     time.Duration
	now         time.Time
	// params are extra signed query parameters (callback, callback-var,
	// partNumber, uploadId), sorted by name, names that need no encoding.
	params [][2]string
}

// presignV4 signs a PUT URL with OSS4-HMAC-SHA256 query auth (protocol
// §2.2): the canonical request covers the method, /bucket/key, every query
// parameter but the signature, the Content-Type header and an unsigned
// payload. Tests check it against aliyun-oss-go-sdk's SignURL and an
// independent reference signer.
func presignV4(in presignV4Input, c creds, keys *v4KeyCache) string {
	now := in.now.UTC()
	date := now.Format("20060102T150405Z")
	scopeDate := date[:8]
	q := [][2]string{
		{"x-oss-credential", c.ID + "/" + scopeDate + "/" + in.region + "/oss/aliyun_v4_request"},
		{"x-oss-date", date},
		{"x-oss-expires", strconv.FormatInt(int64(in.expires/time.Second), 10)},
	}
	if c.Token != "" {
		q = append(q, [2]string{"x-oss-security-token", c.Token})
	}
	q = append(q, [2]string{"x-oss-signature-version", v4Algorithm})
	// The extra parameters (callback, callback-var, partNumber, uploadId)
	// sort before x-oss-*.
	q = append(append([][2]string{}, in.params...), q...)

	bp := getJSONBuf()
	defer putJSONBuf(bp)
	query := (*bp)[:0]
	for i, p := range q {
		if i > 0 {
			query = append(query, '&')
		}
		query = uriEncode(query, p[0], false)
		query = append(query, '=')
		query = uriEncode(query, p[1], false)
	}
	queryLen := len(query)

	creq := query[queryLen:]
	creq = append(creq, "PUT\n/"...)
	creq = uriEncode(creq, in.bucket, false)
	creq = append(creq, '/')
	creq = uriEncode(creq, in.key, true)
	creq = append(creq, '\n')
	creq = append(creq, query[:queryLen]...)
	creq = append(creq, '\n')
	if ct := strings.TrimSpace(in.contentType); ct != "" {
		// Signed only when the client will send it: a request without
		// the header has no content-type line (protocol §2.2).
		creq = append(creq, "content-type:"...)
		creq = append(creq, ct...)
		creq = append(creq, '\n')
	}
	creq = append(creq, "\n\nUNSIGNED-PAYLOAD"...)
	sum := sha256.Sum256(creq)

	var hexSum [64]byte
	hex.Encode(hexSum[:], sum[:])
	sig := keys.sign(c.Secret, scopeDate, in.region,
		[]byte(v4Algorithm+"\n"+date+"\n"+scopeDate+"/"+in.region+"/oss/aliyun_v4_request\n"), hexSum[:])

	u := make([]byte, 0, len(in.baseURL)+len(in.key)*3+queryLen+100)
	u = append(u, in.baseURL...)
	u = append(u, '/')
	u = uriEncode(u, in.key, true)
	u = append(u, '?')
	u = append(u, query[:queryLen]...)
	u = append(u, "&x-oss-signature="...)
	u = append(u, sig...)
	*bp = query
	return string(u)
}

// maxSTSURLLifetime is the longest lifetime OSS accepts for a V4 presigned
// URL signed with STS credentials (a server on an ECS RAM role or an OIDC
// role signs with those).
const maxSTSURLLifetime = 12 * time.Hour

// urlLifetime is the lifetime of a presigned URL signed with c: expires,
// capped at 12 h for V4 URLs signed with STS credentials.
func (h *Handler) urlLifetime(c creds) time.Duration {
	d := time.Duration(h.Expires)
	if c.Token != "" && h.SignatureVersion == sigV4 && d > maxSTSURLLifetime {
		return maxSTSURLLifetime
	}
	return d
}
