package caddyoss

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// An upload id handed to Uppy is OSS's upload id sealed to its bucket and
// key: "<oss upload id>.<base64url HMAC-SHA256, 18 bytes>". A caller can
// then act only on uploads this site created, for the key they were
// created for, without asking OSS first.
const uploadIDMACBytes = 18

// sealUploadID returns the upload id Uppy gets for OSS's id of key.
func (u *uppyRoutes) sealUploadID(ctx context.Context, key, ossID string) (string, error) {
	var sum [sha256.Size]byte
	mac, err := u.uploadIDMAC(ctx, sum[:0], key, ossID)
	if err != nil {
		return "", err
	}
	return ossID + "." + base64.RawURLEncoding.EncodeToString(mac), nil
}

// openUploadID returns OSS's upload id from a sealed one, or an error when
// the seal is not this site's for key.
func (u *uppyRoutes) openUploadID(ctx context.Context, key, sealed string) (string, error) {
	i := strings.LastIndexByte(sealed, '.')
	// 18 bytes are exactly 24 base64 characters, without padding or spare
	// bits: one spelling per seal.
	if i <= 0 || len(sealed)-i-1 != base64.RawURLEncoding.EncodedLen(uploadIDMACBytes) {
		return "", errors.New("uploadId was not issued by this site")
	}
	ossID := sealed[:i]
	var got [uploadIDMACBytes]byte
	if _, err := base64.RawURLEncoding.Decode(got[:], []byte(sealed[i+1:])); err != nil {
		return "", errors.New("uploadId was not issued by this site")
	}
	var sum [sha256.Size]byte
	mac, err := u.uploadIDMAC(ctx, sum[:0], key, ossID)
	if err != nil {
		return "", err
	}
	if !hmac.Equal(got[:], mac) {
		return "", errors.New("uploadId does not belong to this key")
	}
	return ossID, nil
}

// uploadIDMAC appends the seal of (bucket, key, OSS id) to dst: the first
// 18 bytes of HMAC-SHA256 with the binding key, from a pool of keyed MACs.
func (u *uppyRoutes) uploadIDMAC(ctx context.Context, dst []byte, key, ossID string) ([]byte, error) {
	k, err := u.seal.keys.Shared(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSealKey, err)
	}
	p := u.seal.macs.Load()
	if p == nil || !bytes.Equal(p.key, k) {
		p = newKeyedMACs(k)
		u.seal.macs.Store(p)
	}
	m := p.pool.Get().(hash.Hash)
	m.Reset()
	bp := jsonw.Get()
	b := append((*bp)[:0], "oss_upload uppy upload\x00"...)
	b = append(b, u.Bucket...)
	b = append(b, 0)
	b = append(b, key...)
	b = append(b, 0)
	b = append(b, ossID...)
	m.Write(b)
	*bp = b
	jsonw.Put(bp)
	dst = m.Sum(dst)
	p.pool.Put(m)
	return dst[:len(dst)-sha256.Size+uploadIDMACBytes], nil
}

// uploadIDSeal is what seals Uppy upload ids: the binding key source and
// HMACs keyed with its shared key.
type uploadIDSeal struct {
	keys *callback.KeySource
	macs atomic.Pointer[keyedMACs]
}

// keyedMACs pools HMAC-SHA256 hashes keyed with one key.
type keyedMACs struct {
	key  []byte
	pool sync.Pool
}

func newKeyedMACs(key []byte) *keyedMACs {
	p := &keyedMACs{key: key}
	p.pool.New = func() any { return hmac.New(sha256.New, p.key) }
	return p
}

// errSealKey is returned when the sealing key cannot be read.
var errSealKey = errors.New("reading the upload id key failed")
