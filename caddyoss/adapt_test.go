package caddyoss

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCaddyfileAdapt runs the golden files in testdata/caddyfile_adapt: a
// Caddyfile, a line of ten dashes, then the expected JSON (or, when it does
// not start with '{', a substring of the expected adapt error).
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	newlines := regexp.MustCompile(`\r?\n`)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(string(data), "----------")
			if len(parts) != 2 {
				t.Fatal("want one line of ten dashes")
			}
			input := strings.TrimSpace(parts[0]) + "\n"
			expected := newlines.ReplaceAllString(strings.TrimSpace(parts[1]), "\n")
			if strings.HasPrefix(expected, "{") {
				if !caddytest.CompareAdapt(t, f, input, "caddyfile", expected) {
					t.Error("adapted JSON differs (diff on stdout)")
				}
				return
			}
			_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
			if err == nil || !strings.Contains(err.Error(), expected) {
				t.Errorf("adapt error %v, want %q", err, expected)
			}
		})
	}
}
