package caddyoss

import (
	"math/rand/v2"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestRequestTemplateMatchesReplacer expands generated templates both ways:
// split at provision, and with Caddy's own ReplaceOrErr. Results and
// failures must agree.
func TestRequestTemplateMatchesReplacer(t *testing.T) {
	req := httptest.NewRequest("GET", "/oss/sts?x=1", nil)
	req.Header.Set("X-User", "alice")
	req.Header.Set("X-Team", "blue/green")
	req.Header.Set("X-Empty", "")
	repl := caddyhttp.NewTestReplacer(req)
	repl.Set("my.var", 42)

	pieces := []string{
		"uploads/", "a", "/", "{", "}", `\{`, `\}`, `\`, "{http.request.header.X-User}",
		"{http.request.header.X-Team}", "{http.request.header.X-Empty}", "{http.request.header.Missing}",
		"{my.var}", "{no.such.placeholder}", "{}", "{{http.request.header.X-User}}", "x}y", "{a{b}",
		"{http.request.uri.query.x}", "ü", "$", "*",
	}
	tmpls := []string{"", "uploads/", "uploads/{http.request.header.X-User}/"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var s string
		for n := rng.IntN(5) + 1; n > 0; n-- {
			s += pieces[rng.IntN(len(pieces))]
		}
		tmpls = append(tmpls, s)
	}
	split := 0
	for _, s := range tmpls {
		tpl := newRequestTemplate(s)
		if tpl.parts != nil {
			split++
		}
		got, gotErr := tpl.appendExpanded(nil, repl)
		want, wantErr := repl.ReplaceOrErr(s, true, true)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("%q: error %v, replacer's %v", s, gotErr, wantErr)
		}
		if gotErr == nil && string(got) != want {
			t.Fatalf("%q: %q, replacer's %q", s, got, want)
		}
	}
	// Most generated templates take the split path, so it is what is tested.
	if split < len(tmpls)/5 {
		t.Errorf("only %d of %d templates were split", split, len(tmpls))
	}
}
