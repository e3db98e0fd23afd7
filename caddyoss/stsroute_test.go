package caddyoss

import (
	"strings"
	"testing"
)

func TestSanitizeSessionName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web-alice", "web-alice"},
		{"a.b@c_d-E9", "a.b@c_d-E9"},
		{"web alice", "web_alice"},
		{"web-ä", "web-__"},
		{"x", "x_"},
		{"", "__"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64)},
		{strings.Repeat("a", 63) + "/b", strings.Repeat("a", 63) + "_"},
	} {
		if got := sanitizeSessionName(tc.in); got != tc.want {
			t.Errorf("sanitizeSessionName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !validSessionName(sanitizeSessionName(tc.in)) {
			t.Errorf("sanitizeSessionName(%q) is not a valid session name", tc.in)
		}
	}
}
