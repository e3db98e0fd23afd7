package caddyoss

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// A binding ties a callback to the signing decision that issued it. Alibaba
// signs every customer's callbacks with one key, so a valid signature only
// proves that OSS sent a callback; the binding proves that this site
// authorized the upload it reports. It travels as the custom variable
// x:oss_binding, which OSS copies into the callback body:
//
//	1.<kind>.<expiry unix>.<base64url scope>.<base64url HMAC-SHA256>
//
// The HMAC covers the kind, the bucket, the scope (the exact key, or the
// prefix), the expiry and every other custom variable, under a key shared
// by all instances that serve the site.
const (
	bindingVar     = "oss_binding"
	bindingVersion = "1"

	// bindingExactKey: the server chose the exact key and the callback
	// template was pinned (PostObject, presigned PUT). The scope is the
	// body's ${object}, so the value carries none.
	bindingExactKey = 'k'
	// bindingPrefix: the client names the key below the prefix, the
	// template is pinned (PostObject with client_keys).
	bindingPrefix = 'p'
	// bindingSTS: the client holds STS credentials and writes the callback
	// parameter itself. (Every bound callback's facts are confirmed with
	// OSS; the kind tells the log and the app's operator how it was issued.)
	bindingSTS = 's'

	// bindingGrace is added to a signature's lifetime: OSS checks a policy
	// or URL when the upload starts, and a large upload may take hours.
	bindingGrace = 24 * time.Hour

	// bindingKeyStorageKey is where the shared key lives in Caddy's storage
	// when the configuration names none.
	bindingKeyStorageKey = "oss_upload/callback_binding.key"
	bindingKeyLockName   = "oss_upload_callback_binding_key"
	minBindingKeyBytes   = 32
)

// binding is a parsed x:oss_binding value.
type binding struct {
	kind   byte
	expiry int64
	scope  string
	mac    []byte
}

// bindingMAC computes the HMAC of a binding. Variable names are [a-z0-9_]
// and no part may contain NUL (expanded values with control characters are
// refused), so NUL separators make the message unambiguous.
func bindingMAC(key []byte, kind byte, bucket, scope string, expiry int64, vars map[string]string) []byte {
	m := hmac.New(sha256.New, key)
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	b = append(b, "caddy-oss binding "+bindingVersion+"\x00"...)
	b = append(b, kind, 0)
	b = append(b, bucket...)
	b = append(b, 0)
	b = append(b, scope...)
	b = append(b, 0)
	b = strconv.AppendInt(b, expiry, 10)
	b = append(b, 0)
	for _, n := range names {
		b = append(b, n...)
		b = append(b, 0)
		b = append(b, vars[n]...)
		b = append(b, 0)
	}
	m.Write(b)
	return m.Sum(nil)
}

// encodeBinding signs a binding. vars are the other custom variables by
// name without "x:".
func encodeBinding(key []byte, kind byte, bucket, scope string, expiry time.Time, vars map[string]string) string {
	exp := expiry.Unix()
	mac := bindingMAC(key, kind, bucket, scope, exp, vars)
	carried := scope
	if kind == bindingExactKey {
		carried = ""
	}
	return bindingVersion + "." + string(kind) + "." + strconv.FormatInt(exp, 10) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(carried)) + "." +
		base64.RawURLEncoding.EncodeToString(mac)
}

var errBadBinding = errors.New("callback binding is malformed")

// parseBinding reads an x:oss_binding value.
func parseBinding(v string) (binding, error) {
	var b binding
	parts := strings.Split(v, ".")
	if len(parts) != 5 || parts[0] != bindingVersion || len(parts[1]) != 1 {
		return b, errBadBinding
	}
	b.kind = parts[1][0]
	if b.kind != bindingExactKey && b.kind != bindingPrefix && b.kind != bindingSTS {
		return b, errBadBinding
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || exp <= 0 {
		return b, errBadBinding
	}
	b.expiry = exp
	scope, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil || (b.kind == bindingExactKey) != (len(scope) == 0) {
		return b, errBadBinding
	}
	b.scope = string(scope)
	if b.mac, err = base64.RawURLEncoding.DecodeString(parts[4]); err != nil || len(b.mac) != sha256.Size {
		return b, errBadBinding
	}
	return b, nil
}

// bindingKeySource gives the key bindings are signed with: the configured
// binding_key, or one kept in Caddy's storage so every instance sharing
// that storage (a cluster) signs and checks with the same key. The stored
// key is created on first use, under a storage lock, and read once.
type bindingKeySource struct {
	static  []byte
	storage certmagic.Storage

	mu  sync.Mutex
	key []byte

	// macs pools HMACs keyed with the key, for the Uppy upload-id seals.
	macs atomic.Pointer[keyedMACs]
}

// newBindingKeySource is the key source of the config: callback
// binding_key when set, else the key kept in Caddy's storage.
func (h *Handler) newBindingKeySource() *bindingKeySource {
	s := &bindingKeySource{storage: h.storage}
	if c := h.Callback; c != nil && c.BindingKey != "" {
		s.static = []byte(c.BindingKey)
	}
	return s
}

func (s *bindingKeySource) get(ctx context.Context) ([]byte, error) {
	if s.static != nil {
		return s.static, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	k, err := s.load(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		k, err = s.create(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("callback binding key: %w", err)
	}
	s.key = k
	return k, nil
}

func (s *bindingKeySource) load(ctx context.Context) ([]byte, error) {
	b, err := s.storage.Load(ctx, bindingKeyStorageKey)
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < minBindingKeyBytes {
		return nil, fmt.Errorf("%s in storage is not a hex key of at least %d bytes", bindingKeyStorageKey, minBindingKeyBytes)
	}
	return k, nil
}

// create makes the shared key once: whoever holds the lock first writes
// it, the others read what it wrote.
func (s *bindingKeySource) create(ctx context.Context) ([]byte, error) {
	if err := s.storage.Lock(ctx, bindingKeyLockName); err != nil {
		return nil, err
	}
	defer func() { _ = s.storage.Unlock(context.WithoutCancel(ctx), bindingKeyLockName) }()
	k, err := s.load(ctx)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k = make([]byte, minBindingKeyBytes)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	if err := s.storage.Store(ctx, bindingKeyStorageKey, []byte(hex.EncodeToString(k)+"\n")); err != nil {
		return nil, err
	}
	return k, nil
}
