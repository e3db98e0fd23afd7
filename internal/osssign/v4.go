package osssign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// Signature versions, as the configuration names them.
const (
	V1 = "v1"
	V4 = "v4"

	// V4Algorithm is the OSS V4 signing algorithm name.
	V4Algorithm = "OSS4-HMAC-SHA256"
)

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// SigningKeyV4 derives the OSS V4 signing key for a secret, a YYYYMMDD date
// and a region.
func SigningKeyV4(secret, date, region string) []byte {
	k := hmacSHA256([]byte("aliyun_v4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "oss")
	return hmacSHA256(k, "aliyun_v4_request")
}

// v4KeyCache caches V4 signing keys per (secret, date, region): a key
// changes once a day, so signing a policy costs one HMAC instead of five.
// Each key keeps a pool of keyed HMACs, so a signature allocates nothing
// for the hash. The key used last is found without the lock.
type v4KeyCache struct {
	last atomic.Pointer[v4Key]
	mu   sync.RWMutex
	keys map[v4KeyID]*v4Key
}

type v4KeyID struct{ secret, date, region string }

type v4Key struct {
	id   v4KeyID
	key  []byte
	macs sync.Pool // hash.Hash keyed with key
}

// maxCachedV4Keys bounds the cache; rotating credentials (STS, RAM roles)
// add a key per secret, and old dates are useless after a day.
const maxCachedV4Keys = 64

// lastFor returns the key used last when it is the one asked for.
func (c *v4KeyCache) lastFor(secret string, date []byte, region string) *v4Key {
	if k := c.last.Load(); k != nil && k.id.secret == secret && k.id.region == region && k.id.date == string(date) {
		return k
	}
	return nil
}

func (c *v4KeyCache) entry(secret, date, region string) *v4Key {
	id := v4KeyID{secret, date, region}
	c.mu.RLock()
	k, ok := c.keys[id]
	c.mu.RUnlock()
	if !ok {
		k = &v4Key{id: id, key: SigningKeyV4(secret, date, region)}
		k.macs.New = func() any { return hmac.New(sha256.New, k.key) }
		c.mu.Lock()
		if c.keys == nil || len(c.keys) >= maxCachedV4Keys {
			c.keys = make(map[v4KeyID]*v4Key)
		}
		c.keys[id] = k
		c.mu.Unlock()
	}
	c.last.Store(k)
	return k
}

// entryFor is entry for a date held in bytes: the key used last is found
// without converting it.
func (c *v4KeyCache) entryFor(secret string, date []byte, region string) *v4Key {
	if k := c.lastFor(secret, date, region); k != nil {
		return k
	}
	return c.entry(secret, string(date), region)
}

// get returns the signing key.
func (c *v4KeyCache) get(secret, date, region string) []byte {
	return c.entry(secret, date, region).key
}

// sign returns hex(HMAC-SHA256(signing key, parts...)).
func (c *v4KeyCache) sign(secret, date, region string, parts ...[]byte) string {
	k := c.last.Load()
	if k == nil || k.id != (v4KeyID{secret, date, region}) {
		k = c.entry(secret, date, region)
	}
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

// appendSign appends hex(HMAC-SHA256(signing key, msg)) to dst. msg may
// be part of dst.
func (c *v4KeyCache) appendSign(dst []byte, secret string, date []byte, region string, msg []byte) []byte {
	k := c.entryFor(secret, date, region)
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(msg)
	var sum [sha256.Size]byte
	dst = hex.AppendEncode(dst, m.Sum(sum[:0]))
	k.macs.Put(m)
	return dst
}

// V4URL is one V4 presigned PUT URL to sign.
type V4URL struct {
	BaseURL     string // where the client sends the bytes, no trailing '/'
	Bucket      string
	Region      string
	Key         string
	ContentType string // signed when not empty
	Expires     time.Duration
	Now         time.Time
	// Params are extra signed query parameters (callback, callback-var,
	// partNumber, uploadId), sorted by name, names that need no encoding.
	Params [][2]string
}

// V4URL signs a PUT URL with OSS4-HMAC-SHA256 query auth (protocol
// §2.2): the canonical request covers the method, /bucket/key, every query
// parameter but the signature, the Content-Type header and an unsigned
// payload. Tests check it against aliyun-oss-go-sdk's SignURL and an
// independent reference signer.
func (s *Signer) V4URL(in V4URL, c Credentials) string {
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	*bp = s.AppendV4URL((*bp)[:0], in, c)
	return string(*bp)
}

// AppendV4URL appends the URL V4URL signs to dst. The canonical
// query, the canonical request and the string to sign are built in dst's
// spare capacity, one after the other, and the URL is then moved down to
// where it belongs.
func (s *Signer) AppendV4URL(dst []byte, in V4URL, c Credentials) []byte {
	base := len(dst)
	b := dst
	var dateBuf [16]byte
	date := AppendUTCBasic(dateBuf[:0], in.Now)
	scopeDate := date[:8]

	param := func(k, v string) {
		if len(b) > base {
			b = append(b, '&')
		}
		b = AppendURIEncode(b, k, false)
		b = append(b, '=')
		b = AppendURIEncode(b, v, false)
	}
	// The extra parameters (callback, callback-var, partNumber, uploadId)
	// sort before x-oss-*.
	for _, p := range in.Params {
		param(p[0], p[1])
	}
	if len(b) > base {
		b = append(b, '&')
	}
	b = append(b, "x-oss-credential="...)
	b = AppendURIEncode(b, c.ID, false)
	b = append(b, "%2F"...)
	b = append(b, scopeDate...)
	b = append(b, "%2F"...)
	b = AppendURIEncode(b, in.Region, false)
	b = append(b, "%2Foss%2Faliyun_v4_request&x-oss-date="...)
	b = append(b, date...) // digits and letters: nothing to encode
	b = append(b, "&x-oss-expires="...)
	b = strconv.AppendInt(b, int64(in.Expires/time.Second), 10)
	if c.Token != "" {
		param("x-oss-security-token", c.Token)
	}
	param("x-oss-signature-version", V4Algorithm)
	queryEnd := len(b)

	creqStart := len(b)
	b = append(b, "PUT\n/"...)
	b = AppendURIEncode(b, in.Bucket, false)
	b = append(b, '/')
	b = AppendURIEncode(b, in.Key, true)
	b = append(b, '\n')
	b = append(b, b[base:queryEnd]...)
	b = append(b, '\n')
	if ct := strings.TrimSpace(in.ContentType); ct != "" {
		// Signed only when the client will send it: a request without
		// the header has no content-type line (protocol §2.2).
		b = append(b, "content-type:"...)
		b = append(b, ct...)
		b = append(b, '\n')
	}
	b = append(b, "\n\nUNSIGNED-PAYLOAD"...)
	sum := sha256.Sum256(b[creqStart:])

	stsStart := len(b)
	b = append(b, V4Algorithm+"\n"...)
	b = append(b, date...)
	b = append(b, '\n')
	b = append(b, scopeDate...)
	b = append(b, '/')
	b = append(b, in.Region...)
	b = append(b, "/oss/aliyun_v4_request\n"...)
	b = hex.AppendEncode(b, sum[:])
	stsEnd := len(b)

	urlStart := len(b)
	b = append(b, in.BaseURL...)
	b = append(b, '/')
	b = AppendURIEncode(b, in.Key, true)
	b = append(b, '?')
	b = append(b, b[base:queryEnd]...)
	b = append(b, "&x-oss-signature="...)
	b = s.v4.appendSign(b, c.Secret, scopeDate, in.Region, b[stsStart:stsEnd])
	n := copy(b[base:], b[urlStart:])
	return b[:base+n]
}

// MaxSTSURLLifetime is the longest lifetime OSS accepts for a V4 presigned
// URL signed with STS credentials (a server on an ECS RAM role or an OIDC
// role signs with those).
const MaxSTSURLLifetime = 12 * time.Hour
