package caddyoss

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

const (
	// replayPrefix holds one record per delivered callback in Caddy's
	// storage, so a copy is refused by every instance sharing it.
	replayPrefix = "oss_upload/callbacks/seen"

	// unboundReplayTTL is how long a callback without a binding (verify_only)
	// is remembered; a bound callback is remembered until its binding expires.
	unboundReplayTTL = 30 * 24 * time.Hour

	replayPurgeEvery = time.Hour
)

// callbackID names one callback: the SHA-256 of what OSS signed (decoded
// path, query and body). Headers are not signed, so they are left out: a
// copy with other headers is the same callback.
func callbackID(stringToSign []byte) string {
	sum := sha256.Sum256(stringToSign)
	return hex.EncodeToString(sum[:])
}

// replayGuard lets each callback through once. Records live in Caddy's
// storage (file system by default; Redis, Consul and others in clusters);
// concurrent copies inside one process are serialized in memory, so the
// request path takes no storage lock.
type replayGuard struct {
	storage certmagic.Storage
	logger  *zap.Logger
	now     func() time.Time

	mu       sync.Mutex
	inflight map[string]bool
}

func newReplayGuard(s certmagic.Storage, logger *zap.Logger, now func() time.Time) *replayGuard {
	return &replayGuard{storage: s, logger: logger, now: now, inflight: map[string]bool{}}
}

func replayKey(id string) string { return replayPrefix + "/" + id[:2] + "/" + id }

// claim records the callback id as delivered until expires. It reports
// false when the id was already recorded (or is being recorded right now).
func (g *replayGuard) claim(ctx context.Context, id string, expires time.Time) (bool, error) {
	g.mu.Lock()
	if g.inflight[id] {
		g.mu.Unlock()
		return false, nil
	}
	g.inflight[id] = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.inflight, id)
		g.mu.Unlock()
	}()

	key := replayKey(id)
	if _, err := g.storage.Load(ctx, key); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, g.storage.Store(ctx, key, []byte(strconv.FormatInt(expires.Unix(), 10)))
}

// purgeLoop deletes expired records until ctx ends (a config unload).
func (g *replayGuard) purgeLoop(ctx context.Context) {
	t := time.NewTicker(replayPurgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := g.purge(ctx); err != nil {
				g.logger.Warn("purging callback replay records failed", zap.Error(err))
			} else if n > 0 {
				g.logger.Debug("purged callback replay records", zap.Int("count", n))
			}
		}
	}
}

// purge deletes the records whose expiry has passed and reports how many.
func (g *replayGuard) purge(ctx context.Context) (int, error) {
	keys, err := g.storage.List(ctx, replayPrefix, true)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := g.now().Unix()
	n := 0
	for _, k := range keys {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		b, err := g.storage.Load(ctx, k)
		if err != nil {
			continue // a directory, or deleted meanwhile
		}
		exp, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && exp > now {
			continue
		}
		if g.storage.Delete(ctx, k) == nil {
			n++
		}
	}
	return n, nil
}
