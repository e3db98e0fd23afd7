package callback

import (
	"context"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"
)

// The stored key is made once, whoever asks first, and every source over
// the same storage (another instance) reads the same key.
func TestBindingKeySharedThroughStorage(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := NewKeySource(nil, st, "").Shared(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i := range keys {
		if len(keys[i]) != MinKeyBytes || string(keys[i]) != string(keys[0]) {
			t.Fatalf("instance %d got another key", i)
		}
	}
	// A configured key wins over storage.
	k, _ := NewKeySource([]byte("configured"), st, "").Shared(context.Background())
	if string(k) != "configured" {
		t.Errorf("got %q", k)
	}
	// A damaged stored key is an error, not a silent new key.
	_ = st.Store(context.Background(), KeyStorageKey, []byte("zz"))
	if _, err := NewKeySource(nil, st, "").Shared(context.Background()); err == nil {
		t.Error("a damaged key was accepted")
	}
}
