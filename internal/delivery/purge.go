package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// purge deletes the expired groups: done groups whose hour has passed, and
// dead groups KeepDead after their hour. It lists the group names of done/
// and dead/ and deletes each expired group with one Delete; it never reads
// a record. Failures are logged and left for the next purge.
func (q *Queue) purge(ctx context.Context) {
	if !q.purgeProbed {
		each, err := q.probe(ctx)
		if err != nil {
			q.observe(OutcomeStorageError)
			q.logger.Error("finding out how the storage deletes directories failed; purge postponed", zap.Error(err))
			return
		}
		q.purgeEach, q.purgeProbed = each, true
		if each {
			q.logger.Info("the storage keeps a directory's keys when the directory is deleted; expired records are deleted one by one")
		}
	}
	now := q.now().Unix()
	q.purgeDir(ctx, doneDir, now, 0)
	q.purgeDir(ctx, deadDir, now, int64(q.keepDead/time.Second))
}

// purgeDir deletes the groups of dir whose hour plus keep seconds is not
// after now.
func (q *Queue) purgeDir(ctx context.Context, dir string, now, keep int64) {
	keys, err := q.storage.List(ctx, q.dir(dir), false)
	if err != nil {
		if !notFound(err) {
			q.observe(OutcomeStorageError)
			q.logger.Error("listing record groups to purge failed", zap.String("dir", q.dir(dir)), zap.Error(err))
		}
		return
	}
	purged := 0
	for _, key := range keys {
		g, err := strconv.ParseInt(path.Base(key), 10, 64)
		if err != nil || g+keep > now {
			continue
		}
		if err := q.deleteGroup(ctx, key); err != nil {
			q.observe(OutcomeStorageError)
			q.logger.Error("purging an expired record group failed", zap.String("group", key), zap.Error(err))
			continue
		}
		purged++
	}
	if purged > 0 {
		q.logger.Debug("purged expired record groups", zap.String("dir", q.dir(dir)), zap.Int("groups", purged))
	}
}

// deleteGroup deletes one group: one Delete, preceded by a Delete per
// record on a storage that leaves a directory's keys in place.
func (q *Queue) deleteGroup(ctx context.Context, key string) error {
	if q.purgeEach {
		recs, err := q.storage.List(ctx, key, false)
		if err != nil && !notFound(err) {
			return err
		}
		for _, r := range recs {
			if err := q.storage.Delete(ctx, r); err != nil {
				return err
			}
		}
	}
	return q.storage.Delete(ctx, key)
}

// probe finds out whether deleting a directory deletes the keys below it,
// as certmagic's Storage contract asks: it writes a key below
// <Prefix>/probe, deletes <Prefix>/probe, and reads the key back. It
// reports true when the key survived (then it is deleted by name).
func (q *Queue) probe(ctx context.Context) (each bool, err error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir := q.dir(probeDir)
	key := dir + "/" + hex.EncodeToString(b[:])
	if err := q.storage.Store(ctx, key, []byte("probe")); err != nil {
		return false, fmt.Errorf("writing %s: %w", key, err)
	}
	if err := q.storage.Delete(ctx, dir); err != nil {
		_ = q.storage.Delete(ctx, key)
		return false, fmt.Errorf("deleting %s: %w", dir, err)
	}
	_, err = q.storage.Load(ctx, key)
	switch {
	case notFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading %s back: %w", key, err)
	}
	if err := q.storage.Delete(ctx, key); err != nil {
		q.logger.Warn("deleting a storage probe record failed", zap.String("key", key), zap.Error(err))
	}
	return true, nil
}
