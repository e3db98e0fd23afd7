package caddyoss

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"
)

// Instances sharing Caddy's storage open each other's upload ids; one with
// other storage does not.
func TestUppySealSharedByStorage(t *testing.T) {
	shared := &certmagic.FileStorage{Path: t.TempDir()}
	a := testHandler(t, func(h *Handler) { h.storage = shared })
	b := testHandler(t, func(h *Handler) { h.storage = shared })
	other := testHandler(t, nil)
	ctx := context.Background()
	sealed, err := a.uppy.sealUploadID(ctx, "u/k.bin", "0004B9894A22E5B1888A1E29F8236E2D")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := b.uppy.openUploadID(ctx, "u/k.bin", sealed); err != nil || id != "0004B9894A22E5B1888A1E29F8236E2D" {
		t.Errorf("the other instance opened %q, %v", id, err)
	}
	if _, err := b.uppy.openUploadID(ctx, "u/other.bin", sealed); err == nil {
		t.Error("an id sealed for one key opened for another")
	}
	if _, err := other.uppy.openUploadID(ctx, "u/k.bin", sealed); err == nil {
		t.Error("an instance with other storage opened the id")
	}
}

// TestUppySealSpellings: a sealed upload id opens only as issued. Every
// one-character change, removal or addition, padding, and the seal moved
// to another OSS id are refused; seals of many ids and keys open from one
// pool of MACs, concurrently.
func TestUppySealSpellings(t *testing.T) {
	h := testHandler(t, nil)
	ctx := context.Background()
	const key, ossID = "u/alice/k.bin", "0004B9894A22E5B1888A1E29F8236E2D"
	sealed, err := h.uppy.sealUploadID(ctx, key, ossID)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := h.uppy.openUploadID(ctx, key, sealed); err != nil || id != ossID {
		t.Fatalf("genuine: %q %v", id, err)
	}
	dot := strings.LastIndexByte(sealed, '.')
	variants := []string{sealed + "=", sealed + "==", sealed[:len(sealed)-1], sealed + "A", "." + sealed[dot+1:],
		ossID + "X" + sealed[dot:], ossID[1:] + sealed[dot:], ossID, sealed[dot+1:], strings.ToLower(sealed)}
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=."
	for i := dot + 1; i < len(sealed); i++ {
		for _, c := range alphabet {
			if byte(c) != sealed[i] {
				variants = append(variants, sealed[:i]+string(c)+sealed[i+1:])
			}
		}
		variants = append(variants, sealed[:i]+sealed[i+1:])
	}
	for _, v := range variants {
		if id, err := h.uppy.openUploadID(ctx, key, v); err == nil {
			t.Fatalf("%q opened as %q", v, id)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k, id := fmt.Sprintf("u/%d/%d.bin", g, i), fmt.Sprintf("%032X", g*1000+i)
				s, err := h.uppy.sealUploadID(ctx, k, id)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := h.uppy.openUploadID(ctx, k, s); err != nil || got != id {
					t.Errorf("%s: %q %v", k, got, err)
					return
				}
				if _, err := h.uppy.openUploadID(ctx, k+"x", s); err == nil {
					t.Errorf("%s: opened for another key", k)
					return
				}
			}
		}()
	}
	wg.Wait()
}
