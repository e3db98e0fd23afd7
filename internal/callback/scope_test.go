package callback

import (
	"strings"
	"testing"
)

func TestScopeTemplates(t *testing.T) {
	for _, tc := range []struct {
		template string
		ok       bool
	}{
		{"", true}, {"uploads/", true}, {"uploads", true}, {"uploads/{http.auth.user.id}/", true},
		{"{http.request.host}/{http.auth.user.id}/in/", true}, {"u/team-{x}/", true},
		{"uploads/{http.request.header.X-User}", false}, {"uploads/{a}{b}/", false}, {"{a}", false},
		{"u/{a}-x/", false}, {"u/{a}.png", false},
	} {
		_, err := NewScope(tc.template)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.template, err)
		}
		if err != nil && !strings.Contains(err.Error(), "followed by '/'") {
			t.Errorf("%q: the error does not name the fix: %v", tc.template, err)
		}
	}
}

// A binding's scope fits the template only as one expansion of it: each
// placeholder exactly one non-empty segment.
func TestScopeFits(t *testing.T) {
	sc, err := NewScope("uploads/{http.auth.user.id}/in/")
	if err != nil {
		t.Fatal(err)
	}
	for prefix, want := range map[string]bool{
		"uploads/alice/in/": true, "uploads/al/in/": true,
		"uploads/alice/": false, "uploads//in/": false, "uploads/a/b/in/": false, "uploads/alice/in/x/": false,
		"uploads/alice/in": false, "other/alice/in/": false, "": false, "uploads/alice/inx/": false,
	} {
		if got := sc.FitsPrefix(prefix); got != want {
			t.Errorf("FitsPrefix(%q) = %v", prefix, got)
		}
	}
	for object, want := range map[string]bool{
		"uploads/alice/in/1.png": true, "uploads/alice/in/d/1.png": true,
		"uploads/alice/in/": false, "uploads/alice/1.png": false, "uploads//in/1.png": false, "x/alice/in/1.png": false,
	} {
		if got := sc.Contains(object); got != want {
			t.Errorf("Contains(%q) = %v", object, got)
		}
	}
	empty, _ := NewScope("")
	if !empty.FitsPrefix("") || empty.FitsPrefix("a/") || !empty.Contains("a.png") || empty.Contains("") {
		t.Error("the empty template")
	}
}
