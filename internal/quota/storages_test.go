package quota

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	storageredis "github.com/pberkel/caddy-storage-redis"

	"github.com/caddy-oss/caddy-oss/internal/redistest"
)

// redisStorage is caddy-storage-redis on the redis-server at addr, as a
// Caddy configuration with `storage redis` would provision it. Each call
// is a client of its own, as each instance of a cluster has.
func redisStorage(t testing.TB, addr string) certmagic.Storage {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	rs := storageredis.New()
	rs.Host, rs.Port = []string{host}, []string{port}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := rs.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return rs
}

// sharedStorage is a storage instances share: open is one instance's
// client of it; serverCPU, the CPU time its server used (none for the
// file system).
type sharedStorage struct {
	name      string
	open      func() certmagic.Storage
	serverCPU func() time.Duration
}

// storages are the storages a cluster shares, each started for t: the
// file system in a temporary folder and a real redis-server.
func storages(t testing.TB) []sharedStorage {
	dir := t.TempDir()
	srv := redistest.Start(t)
	none := func() time.Duration { return 0 }
	return []sharedStorage{
		{"file_system", func() certmagic.Storage { return &certmagic.FileStorage{Path: dir} }, none},
		{"redis", func() certmagic.Storage { return redisStorage(t, srv.Addr) }, srv.CPU},
	}
}
