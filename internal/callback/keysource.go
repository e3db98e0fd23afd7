package callback

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// Bindings are signed with a key derived per handler from the key every
// instance of a site shares: the configured binding_key, or one kept in
// Caddy's storage.
const (
	// Grace is added to a signature's lifetime: OSS checks a policy
	// or URL when the upload starts, and a large upload may take hours.
	Grace = 24 * time.Hour

	// KeyStorageKey is where the shared key lives in Caddy's storage
	// when the configuration names none.
	KeyStorageKey = "oss_upload/callback_binding.key"
	keyLockName   = "oss_upload_callback_binding_key"
	// MinKeyBytes is the shortest shared key accepted.
	MinKeyBytes = 32
)

// KeySource gives the key bindings are signed with: the configured
// binding_key, or one kept in Caddy's storage so every instance sharing
// that storage (a cluster) signs and checks with the same key. The stored
// key is created on first use, under a storage lock, and read once.
type KeySource struct {
	static  []byte
	storage certmagic.Storage

	// handlerID names the handler whose binding key ForHandler derives.
	handlerID string

	mu      sync.Mutex
	key     []byte
	derived []byte
}

// NewKeySource is the key source of a handler: static (the configured
// binding_key) when not empty, else the key kept in storage.
func NewKeySource(static []byte, storage certmagic.Storage, handlerID string) *KeySource {
	return &KeySource{static: static, storage: storage, handlerID: handlerID}
}

// Shared returns the key every instance shares: the configured one, or
// the one in storage (created on first use).
func (s *KeySource) Shared(ctx context.Context) ([]byte, error) {
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

// ForHandler returns the key this handler signs and checks bindings with,
// derived from the shared key and the handler's identity.
func (s *KeySource) ForHandler(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	d := s.derived
	s.mu.Unlock()
	if d != nil {
		return d, nil
	}
	k, err := s.Shared(ctx)
	if err != nil {
		return nil, err
	}
	d = HandlerKey(k, s.handlerID)
	s.mu.Lock()
	s.derived = d
	s.mu.Unlock()
	return d, nil
}

func (s *KeySource) load(ctx context.Context) ([]byte, error) {
	b, err := s.storage.Load(ctx, KeyStorageKey)
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < MinKeyBytes {
		return nil, fmt.Errorf("%s in storage is not a hex key of at least %d bytes", KeyStorageKey, MinKeyBytes)
	}
	return k, nil
}

// create makes the shared key once: whoever holds the lock first writes
// it, the others read what it wrote.
func (s *KeySource) create(ctx context.Context) ([]byte, error) {
	if err := s.storage.Lock(ctx, keyLockName); err != nil {
		return nil, err
	}
	defer func() { _ = s.storage.Unlock(context.WithoutCancel(ctx), keyLockName) }()
	k, err := s.load(ctx)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k = make([]byte, MinKeyBytes)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	if err := s.storage.Store(ctx, KeyStorageKey, []byte(hex.EncodeToString(k)+"\n")); err != nil {
		return nil, err
	}
	return k, nil
}
