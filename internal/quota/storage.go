package quota

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"go.uber.org/zap"
)

// deadAfter is how long after its last write another writer's record whose
// content has all expired is deleted by the readers that find it.
const deadAfter = int64(time.Hour / time.Second)

// renewAfter is how long after its last write a Ledger leaves its record
// of a key for a new one (renew): a reader deletes a record only when its
// last write is deadAfter old, its writer writes it only within
// renewAfter of the last write, so a delete never meets a write, as long
// as clocks differ and writes stall by less than renewAfter.
const renewAfter = deadAfter / 2

// renew gives each of ks's own records a new name when its last write is
// older than renewAfter. The old record keeps what it holds, counted as
// another writer's until it expires (and deleted now if it already has);
// a record whose last write failed keeps its name (it is written again at
// once).
func (l *Ledger) renew(ctx context.Context, ks *keyState, now int64) {
	for _, r := range ks.own() {
		if !r.stored || r.dirty || now-r.st.written <= renewAfter {
			continue
		}
		if r.st.empty(now) {
			l.deleteExpired(ctx, ks.dir+"/"+r.writer)
		}
		r.writer, r.st, r.stored, ks.others = l.newWriter(), newState(), false, nil
	}
}

// needsSweep reports whether one of ks's own records has expired while
// stored, or needs to be written again.
func (ks *keyState) needsSweep(now int64) bool {
	for _, r := range ks.own() {
		if r.dirty || r.stored && r.st.empty(now) {
			return true
		}
	}
	return false
}

func (l *Ledger) roundUsage(ctx context.Context, ks *keyState, o *op, at time.Time) {
	others := l.readOthers(ctx, ks, at.Unix())
	if ks.readErr != nil {
		o.err = ks.readErr
		return
	}
	o.usage = newView(l.limits, at, ks, others).usage()
}

// roundReset credits, in the own record, every charge that counts, under
// the key's storage lock so that two resets never credit one charge twice.
// Credits, once tried, are kept: a failed reset may still take effect with
// the next write.
func (l *Ledger) roundReset(ctx context.Context, ks *keyState, o *op, at time.Time) {
	lock := "quota_reset." + strings.ReplaceAll(ks.dir, "/", ".")
	if err := l.storage.Lock(ctx, lock); err != nil {
		o.err = fmt.Errorf("quota: locking %s: %w", lock, err)
		return
	}
	defer func() {
		if err := l.storage.Unlock(context.WithoutCancel(ctx), lock); err != nil {
			l.logger.Warn("quota: unlocking a reset", zap.String("lock", lock), zap.Error(err))
		}
	}()
	others := l.readOthers(ctx, ks, at.Unix())
	if ks.readErr != nil {
		o.err = ks.readErr
		return
	}
	v := newView(l.limits, at, ks, others)
	v.credit()
	if err := l.write(ctx, ks, at.Unix()); err != nil {
		ks.setDirty()
		o.err = err
		return
	}
	o.usage = v.usage()
}

// rewrite writes ks's own records again; a failure is logged and left for
// the next round or Sweep.
func (l *Ledger) rewrite(ctx context.Context, ks *keyState, now int64) {
	if err := l.write(ctx, ks, now); err != nil {
		ks.setDirty()
		l.logger.Warn("quota: rewriting a record", zap.String("dir", ks.dir), zap.Error(err))
	}
}

// write stores each of ks's own records that changed or may differ in
// storage, and deletes those that hold nothing that counts any more. A
// record of reservations alone is written with l.quick when set, the
// others with Store.
func (l *Ledger) write(ctx context.Context, ks *keyState, now int64) error {
	for _, r := range ks.own() {
		s := r.st
		key := ks.dir + "/" + r.writer
		if s.empty(now) {
			if r.stored {
				if err := l.storage.Delete(ctx, key); err != nil && !notFound(err) {
					return fmt.Errorf("quota: deleting %s: %w", key, err)
				}
			}
			r.stored, r.dirty, s.changed = false, false, false
			continue
		}
		if !s.changed && !r.dirty {
			continue
		}
		last := s.written
		s.written = now
		r.stored = true // also when the write fails: it may have written
		store := l.storage.Store
		if r.quick {
			store = l.quick
		}
		if err := store(ctx, key, s.encode()); err != nil {
			s.written = last // the last write that succeeded
			return fmt.Errorf("quota: writing %s: %w", key, err)
		}
		r.dirty, s.changed = false, false
	}
	return nil
}

// readOthers reads the records of the other writers of ks's key, keeps
// them in ks.others and returns them; a failure is left in ks.readErr
// (and ks.others is then nil). A record that cannot be listed, read or
// decoded fails the reading: it is never taken for empty. A record whose
// content has all expired is skipped, and deleted once deadAfter has
// passed since its last write.
func (l *Ledger) readOthers(ctx context.Context, ks *keyState, now int64) map[string]*state {
	ks.others, ks.readErr = l.readRecords(ctx, ks, now)
	return ks.others
}

func (l *Ledger) readRecords(ctx context.Context, ks *keyState, now int64) (map[string]*state, error) {
	names, err := l.list(ctx, ks.dir)
	if err != nil {
		return nil, err
	}
	others := make(map[string]*state, len(names))
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		w := name[strings.LastIndexByte(name, '/')+1:]
		if w == ks.claims.writer || w == ks.kept.writer || !validWriter(w) {
			continue
		}
		raw, err := l.storage.Load(ctx, name)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("quota: reading %s: %w", name, err)
		}
		seen[w] = true
		c := ks.cache[w]
		if c.st == nil || string(c.raw) != string(raw) {
			groups := map[string]*settledGroup{}
			st, err := l.decodeRecord(ctx, name, raw, c.groups, groups)
			if err != nil {
				return nil, fmt.Errorf("quota: record %s is unreadable: %w", name, err)
			}
			c = cachedRecord{raw: raw, st: st, groups: groups}
			ks.cache[w] = c
		}
		if !c.st.empty(now) {
			others[w] = c.st
		} else if c.st.written < now-deadAfter {
			l.deleteExpired(ctx, name)
		}
	}
	for w := range ks.cache {
		if !seen[w] {
			delete(ks.cache, w)
		}
	}
	return others, nil
}

// list lists dir. A List that fails with fs.ErrNotExist means "no such
// folder" only when the folder is indeed missing: the file system's List
// also fails so when a file it was walking vanished (another writer's
// temporary file, renamed over its record), and is then tried again.
func (l *Ledger) list(ctx context.Context, dir string) ([]string, error) {
	for try := 1; ; try++ {
		names, err := l.storage.List(ctx, dir, false)
		switch {
		case err == nil:
			return names, nil
		case !notFound(err):
			return nil, fmt.Errorf("quota: listing %s: %w", dir, err)
		case !l.storage.Exists(ctx, dir):
			return nil, nil
		case try == 10:
			return nil, fmt.Errorf("quota: listing %s, which exists: %w", dir, err)
		}
	}
}

func notFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// decodeRecord decodes raw, the record stored at name (see decodeState).
// When the Ledger writes records with quick, a record cut short (empty, or
// its last line without its newline: every write ends a record with one,
// and replaces it whole for every reader) is what a machine crash leaves
// of a record written without fsync, which held reservations alone: it is
// read as holding nothing, last written when storage says it was last
// modified (now, when it cannot say), so that readers delete it an hour
// later as any dead writer's record.
func (l *Ledger) decodeRecord(ctx context.Context, name string, raw []byte, prev, next map[string]*settledGroup) (*state, error) {
	if l.quick == nil || len(raw) > 0 && raw[len(raw)-1] == '\n' {
		return decodeState(raw, prev, next)
	}
	st := newState()
	st.written = l.now().Unix()
	if info, err := l.storage.Stat(ctx, name); err == nil {
		st.written = min(st.written, info.Modified.Unix())
	}
	l.logger.Warn("quota: a record cut short by a machine crash counts nothing", zap.String("key", name), zap.Int("bytes", len(raw)))
	return st, nil
}

// deleteExpired deletes a record nothing in which counts and that its
// writer never writes again: its own, left (renew), or one whose last
// write is deadAfter old (see renewAfter). A failure is only logged: the
// record is tried again when next found.
func (l *Ledger) deleteExpired(ctx context.Context, name string) {
	if err := l.storage.Delete(ctx, name); err != nil && !notFound(err) {
		l.logger.Debug("quota: deleting an expired record", zap.String("key", name), zap.Error(err))
	}
}

// Purge deletes, for every key below the prefix, the records nothing in
// which counts and whose last write is an hour old: the records of
// Ledgers that stopped (a reload, a crash), of keys nobody uses any more
// (a key in use has them deleted by its readers). Run purges each hour.
// Records it cannot read are left, and logged.
func (l *Ledger) Purge(ctx context.Context) {
	now := l.now().Unix()
	dirs, err := l.list(ctx, l.prefix)
	if err != nil {
		l.logger.Warn("quota: purging", zap.Error(err))
		return
	}
	for _, dir := range dirs {
		names, err := l.list(ctx, dir)
		if err != nil {
			l.logger.Warn("quota: purging", zap.Error(err))
			continue
		}
		for _, name := range names {
			if !validWriter(name[strings.LastIndexByte(name, '/')+1:]) {
				continue
			}
			raw, err := l.storage.Load(ctx, name)
			if notFound(err) {
				continue
			}
			var st *state
			var derr error
			if err == nil {
				st, derr = l.decodeRecord(ctx, name, raw, nil, map[string]*settledGroup{})
			}
			if err != nil || derr != nil {
				l.logger.Warn("quota: purging", zap.String("key", name), zap.Error(errors.Join(err, derr)))
				continue
			}
			if st.empty(now) && st.written < now-deadAfter {
				l.deleteExpired(ctx, name)
			}
		}
	}
}
