package callback_test

import (
	"testing"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/callback/callbacktest"
)

func TestCanonicalPath(t *testing.T) {
	want := callback.CanonicalPath("/api/any")
	if want != "/api/any" {
		t.Fatalf("canonical %q", want)
	}
	for _, v := range callbacktest.PathVariants("/api/any") {
		if got := callback.CanonicalPath(v); got != want {
			t.Errorf("%q → %q", v, got)
		}
	}
	for _, p := range []string{"/api/anyx", "/api", "/api/x/any", "/", "/api/any/x", "/api/any-json", "/api/any.json/x", "/api/any.j-son"} {
		if callback.CanonicalPath(p) == want {
			t.Errorf("%q treated as the callback path", p)
		}
	}
	// A configured path with a suffix covers the same spellings.
	if callback.CanonicalPath("/callback.php") != callback.CanonicalPath("/callback") {
		t.Error("a configured suffix is kept")
	}
}
