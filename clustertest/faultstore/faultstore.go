// Package faultstore is a Caddy storage module for fault tests,
// caddy.storage.faulty: it passes every call to an inner storage module and
// fails or stalls calls as a control file says. Only the cluster tests'
// Caddy links it.
//
//	storage faulty {
//		control /tmp/faults
//		inner file_system /tmp/store
//	}
//
// The control file holds one word, read at every call:
//
//   - "" (or no file): calls pass through;
//   - "stall": each call waits until the word changes, then runs; if its
//     context ends first it returns the context's error and still runs
//     once the stall ends, as a write a timed-out client sent may still
//     land;
//   - "eio": every call fails with EIO (an Unlock fails but frees the lock,
//     as a lock that cannot be kept fresh goes stale);
//   - "enospc": Store and Lock (which writes a lock) fail with ENOSPC.
package faultstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
)

func init() {
	caddy.RegisterModule(Storage{})
}

// Storage wraps an inner storage module with injected faults.
type Storage struct {
	// Control is the control file's path.
	Control string `json:"control"`
	// InnerRaw is the storage module the calls go to.
	InnerRaw json.RawMessage `json:"inner" caddy:"namespace=caddy.storage inline_key=module"`

	inner certmagic.Storage
}

// CaddyModule returns the Caddy module information.
func (Storage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.storage.faulty", New: func() caddy.Module { return new(Storage) }}
}

// Provision loads the inner storage.
func (s *Storage) Provision(ctx caddy.Context) error {
	if s.Control == "" || s.InnerRaw == nil {
		return fmt.Errorf("faulty storage needs control and inner")
	}
	m, err := ctx.LoadModule(s, "InnerRaw")
	if err != nil {
		return err
	}
	s.inner, err = m.(caddy.StorageConverter).CertMagicStorage()
	return err
}

// CertMagicStorage returns s.
func (s *Storage) CertMagicStorage() (certmagic.Storage, error) { return s, nil }

// UnmarshalCaddyfile sets up the storage from Caddyfile tokens.
func (s *Storage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	for d.NextBlock(0) {
		switch d.Val() {
		case "control":
			if !d.AllArgs(&s.Control) {
				return d.ArgErr()
			}
		case "inner":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "caddy.storage."+name)
			if err != nil {
				return err
			}
			s.InnerRaw = caddyconfig.JSONModuleObject(unm, "module", name, nil)
		default:
			return d.Errf("unknown option %s", d.Val())
		}
	}
	return nil
}

func (s *Storage) mode() string {
	b, _ := os.ReadFile(s.Control)
	return strings.TrimSpace(string(b))
}

// fault is what op on key does now: whether to run it, and the error to
// return. After a stall whose ctx ended, the call runs and the context's
// error is returned.
func (s *Storage) fault(ctx context.Context, op, key string) (run bool, err error) {
	switch s.mode() {
	case "eio":
		return false, &fs.PathError{Op: op, Path: key, Err: syscall.EIO}
	case "enospc":
		if op == "store" || op == "lock" {
			return false, &fs.PathError{Op: op, Path: key, Err: syscall.ENOSPC}
		}
	case "stall":
		for s.mode() == "stall" {
			select {
			case <-ctx.Done():
				for s.mode() == "stall" {
					time.Sleep(20 * time.Millisecond)
				}
				return true, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return true, nil
}

// Lock implements certmagic.Locker.
func (s *Storage) Lock(ctx context.Context, name string) error {
	run, err := s.fault(ctx, "lock", name)
	if !run {
		return err
	}
	if lerr := s.inner.Lock(ctx, name); lerr != nil || err == nil {
		return lerr
	}
	// The caller gave up waiting: it will not unlock.
	_ = s.inner.Unlock(context.Background(), name)
	return err
}

// Unlock implements certmagic.Locker.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	// A failed unlock still frees the lock: a lock that cannot be removed
	// cannot be kept fresh either, and goes stale (certmagic's file locks
	// after seconds, Redis locks at their expiry); the tests need not wait.
	_, err := s.fault(ctx, "unlock", name)
	if uerr := s.inner.Unlock(context.WithoutCancel(ctx), name); uerr != nil {
		return uerr
	}
	return err
}

// Store implements certmagic.Storage.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	run, err := s.fault(ctx, "store", key)
	if run {
		if serr := s.inner.Store(ctx, key, value); serr != nil {
			return serr
		}
	}
	return err
}

// Load implements certmagic.Storage.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	run, err := s.fault(ctx, "load", key)
	if !run || err != nil {
		return nil, err
	}
	return s.inner.Load(ctx, key)
}

// Delete implements certmagic.Storage.
func (s *Storage) Delete(ctx context.Context, key string) error {
	run, err := s.fault(ctx, "delete", key)
	if run {
		if derr := s.inner.Delete(ctx, key); derr != nil {
			return derr
		}
	}
	return err
}

// Exists implements certmagic.Storage.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	if run, err := s.fault(ctx, "exists", key); !run || err != nil {
		return false
	}
	return s.inner.Exists(ctx, key)
}

// List implements certmagic.Storage.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	run, err := s.fault(ctx, "list", path)
	if !run || err != nil {
		return nil, err
	}
	return s.inner.List(ctx, path, recursive)
}

// Stat implements certmagic.Storage.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	run, err := s.fault(ctx, "stat", key)
	if !run || err != nil {
		return certmagic.KeyInfo{}, err
	}
	return s.inner.Stat(ctx, key)
}

// Interface guards.
var (
	_ caddy.Provisioner      = (*Storage)(nil)
	_ caddy.StorageConverter = (*Storage)(nil)
	_ caddyfile.Unmarshaler  = (*Storage)(nil)
	_ certmagic.Storage      = (*Storage)(nil)
)
