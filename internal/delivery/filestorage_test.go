package delivery

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// The same life cycle on Caddy's default storage, the file system: claims
// under its lock files, settling, retrying, and purging by directory.
func TestFileStorage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fsStore := &certmagic.FileStorage{Path: dir}
	clk := newClock()
	core := newHarness(t, newMem(), clk, "inst-a") // for its app, logs and helpers
	q, err := New(Config{Storage: fsStore, Prefix: testPrefix, Instance: "inst-a", Now: clk.Now,
		Send: core.app.Send, Logger: core.q.logger, Observe: core.outs.observe})
	if err != nil {
		t.Fatal(err)
	}
	q.rand = func() float64 { return 0.5 }

	claim := func(id string) Claim {
		t.Helper()
		ev := core.event(id)
		c, err := q.Claim(ctx, ev, 4*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Delivered inline; copies are duplicates.
	c := claim("ok")
	if !c.Fresh {
		t.Fatal("not fresh")
	}
	if c2 := claim("ok"); c2.Fresh || c2.State != Received {
		t.Fatalf("copy during the first attempt: %+v", c2)
	}
	if st, err := q.Settle(ctx, c.Event, 200, nil, nil); st != Delivered || err != nil {
		t.Fatalf("settle = %s, %v", st, err)
	}
	if c2 := claim("ok"); c2.State != Delivered {
		t.Fatalf("copy after delivery: %s", c2.State)
	}
	group := strconv.FormatInt(hourCeil(c.Event.Expires), 10)
	doneDir := filepath.Join(dir, filepath.FromSlash(testPrefix), "done", group)
	if _, err := os.Stat(filepath.Join(doneDir, "ok")); err != nil {
		t.Fatal(err)
	}

	// Refused, with its answer.
	r := claim("ref")
	if st, _ := q.Settle(ctx, r.Event, 404, []byte("no such upload"), nil); st != Refused {
		t.Fatalf("settle 404 = %s", st)
	}
	if c2 := claim("ref"); c2.State != Refused || string(c2.Event.Answer) != "no such upload" {
		t.Fatalf("copy of a refused event: %+v", c2)
	}

	// Left to the queue, delivered by a retry.
	p := claim("later")
	if st, _ := q.Settle(ctx, p.Event, 502, nil, nil); st != Received {
		t.Fatalf("settle 502 = %s", st)
	}
	for range 10 {
		q.step(ctx)
		q.wg.Wait()
		clk.Advance(time.Second)
	}
	if core.app.okCount("later") != 1 || q.Owed() != 0 {
		t.Fatalf("retry on the file system: delivered %d, owed %d", core.app.okCount("later"), q.Owed())
	}
	if _, err := fsStore.Load(ctx, q.pendingKey("later")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pending record after delivery: %v", err)
	}
	if q.purgeEach {
		t.Fatal("the file system was taken for a storage that keeps a directory's keys")
	}

	// Purge: the expired group directory goes in one Delete.
	clk.Advance(3 * time.Hour)
	q.purge(ctx)
	if _, err := os.Stat(doneDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("expired group directory still there: %v", err)
	}
	if c2 := claim("ok"); !c2.Fresh {
		t.Fatal("a purged record was still found")
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(testPrefix), "probe")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("probe directory left behind: %v", err)
	}
	locks, _ := filepath.Glob(filepath.Join(dir, "locks", "*"))
	if len(locks) != 0 {
		t.Fatalf("lock files left: %v", locks)
	}
}

// A record being written on the file system is a file of its own in the
// record's folder, named by digits alone (certmagic's FileStorage), until
// it is renamed into place: a listing or a scan that meets it skips it,
// neither failing nor taking it for a corrupt record. A corrupt record
// under an event's name is still reported.
func TestFileStorageRecordsInWriting(t *testing.T) {
	withStorage(t, func(t *testing.T, h *harness, st certmagic.Storage) {
		fsStore, ok := st.(*certmagic.FileStorage)
		if !ok {
			return // only the file system writes through temporary files
		}
		ctx := context.Background()
		h.kill("e1")
		dead, err := h.q.List(ctx, Dead)
		if err != nil || len(dead) != 1 {
			t.Fatalf("dead events: %v, %v", dead, err)
		}
		group := strconv.FormatInt(hourCeil(dead[0].Expires), 10)
		record, err := st.Load(ctx, h.q.deadKey("e1", hourCeil(dead[0].Expires)))
		if err != nil {
			t.Fatal(err)
		}
		deadDir := filepath.Join(fsStore.Path, filepath.FromSlash(testPrefix), "dead", group)
		pendingDir := filepath.Join(fsStore.Path, filepath.FromSlash(testPrefix), "pending")
		for _, f := range []struct{ dir, name string }{
			{deadDir, "2873372933"}, {deadDir, "41"}, {pendingDir, "1234567890"},
		} {
			if err := os.MkdirAll(f.dir, 0o700); err != nil {
				t.Fatal(err)
			}
			content := record
			if f.name == "41" {
				content = record[:len(record)/2] // cut short while written
			}
			if err := os.WriteFile(filepath.Join(f.dir, f.name), content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if dead, err := h.q.List(ctx, Dead); err != nil || len(dead) != 1 || dead[0].ID != "e1" {
			t.Errorf("dead events with records in writing beside them: %v, %v", dead, err)
		}
		h.q.scan(ctx)
		h.q.mu.Lock()
		corrupt := len(h.q.corrupt)
		h.q.mu.Unlock()
		if corrupt != 0 {
			t.Errorf("the scan took a record in writing for a corrupt record")
		}
		if err := os.WriteFile(filepath.Join(deadDir, "e2"), record, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := h.q.List(ctx, Dead); !errors.Is(err, errCorrupt) {
			t.Errorf("a record under another event's name: %v, want it reported", err)
		}
	})
}
