package caddyoss

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sync"
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

// signV4 returns hex(HMAC-SHA256(signingKey, msg)), the V4 signature of a
// POST policy (protocol §1.6).
func signV4(signingKey []byte, msg string) string {
	m := hmac.New(sha256.New, signingKey)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
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
type v4KeyCache struct {
	mu   sync.RWMutex
	keys map[v4KeyID][]byte
}

type v4KeyID struct{ secret, date, region string }

// maxCachedV4Keys bounds the cache; rotating credentials (STS, RAM roles)
// add a key per secret, and old dates are useless after a day.
const maxCachedV4Keys = 64

func (c *v4KeyCache) get(secret, date, region string) []byte {
	id := v4KeyID{secret, date, region}
	c.mu.RLock()
	k, ok := c.keys[id]
	c.mu.RUnlock()
	if ok {
		return k
	}
	k = v4SigningKey(secret, date, region)
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxCachedV4Keys {
		c.keys = make(map[v4KeyID][]byte)
	}
	c.keys[id] = k
	c.mu.Unlock()
	return k
}
