package caddyoss

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// Bindings (internal/callback) are signed with a key derived per handler
// from the key every instance of a site shares: the configured
// binding_key, or one kept in Caddy's storage.
const (
	// bindingGrace is added to a signature's lifetime: OSS checks a policy
	// or URL when the upload starts, and a large upload may take hours.
	bindingGrace = 24 * time.Hour

	// bindingKeyStorageKey is where the shared key lives in Caddy's storage
	// when the configuration names none.
	bindingKeyStorageKey = "oss_upload/callback_binding.key"
	bindingKeyLockName   = "oss_upload_callback_binding_key"
	minBindingKeyBytes   = 32
)

// bindingKeySource gives the key bindings are signed with: the configured
// binding_key, or one kept in Caddy's storage so every instance sharing
// that storage (a cluster) signs and checks with the same key. The stored
// key is created on first use, under a storage lock, and read once.
type bindingKeySource struct {
	static  []byte
	storage certmagic.Storage

	// handlerID, when set, names the handler whose binding key
	// forHandler derives.
	handlerID string

	mu      sync.Mutex
	key     []byte
	derived []byte

	// macs pools HMACs keyed with the key, for the Uppy upload-id seals.
	macs atomic.Pointer[keyedMACs]
}

// newBindingKeySource is the key source of the config: callback
// binding_key when set, else the key kept in Caddy's storage.
func (h *Handler) newBindingKeySource() *bindingKeySource {
	s := &bindingKeySource{storage: h.storage, handlerID: h.id}
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

// forHandler returns the key this handler signs and checks bindings with,
// derived from the shared key and the handler's identity.
func (s *bindingKeySource) forHandler(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	d := s.derived
	s.mu.Unlock()
	if d != nil {
		return d, nil
	}
	k, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	d = callback.HandlerKey(k, s.handlerID)
	s.mu.Lock()
	s.derived = d
	s.mu.Unlock()
	return d, nil
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
