package caddyoss

import (
	"mime"
	"testing"
)

// parseMediaType agrees with mime.ParseMediaType on the media type and on
// whether the value is one, over generated values.
func TestParseMediaTypeMatchesMime(t *testing.T) {
	parts := []string{"", "image", "IMAGE", "png", "Png", "x-icon", "svg+xml", "*", "a.b", "é", "a b", "a\tb", "(x)", "a@b", "\x7f", "ä"}
	seps := []string{"/", "", "//", " /", "/ "}
	tails := []string{"", " ", "; charset=utf-8", ";", "; q", "\t", "/x"}
	heads := []string{"", " ", "\t"}
	n := 0
	for _, h := range heads {
		for _, a := range parts {
			for _, s := range seps {
				for _, b := range parts {
					for _, tail := range tails {
						v := h + a + s + b + tail
						want, _, wantErr := mime.ParseMediaType(v)
						got, gotErr := parseMediaType(v)
						if (wantErr == nil) != (gotErr == nil) || wantErr == nil && got != want {
							t.Errorf("%q: got %q, %v; mime %q, %v", v, got, gotErr, want, wantErr)
						}
						n++
					}
				}
			}
		}
	}
	if n < 10000 {
		t.Fatalf("only %d values", n)
	}
}
