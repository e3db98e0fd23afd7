package caddyoss

import (
	"strings"
	"testing"
)

// appendJSONString must write what encoding/json (without HTML escaping)
// writes: signed policies depend on it.
func TestAppendJSONStringMatchesEncoder(t *testing.T) {
	cases := []string{"", "plain", `quote " and \ backslash`, "<html>&amp;", "\x00\x01\x1f\x7f", "\b\f\n\r\t",
		"héllo 世界", "\u2028\u2029", "bad \xff utf8 \xc3", "emoji 🚀", "$key ${filename}", strings.Repeat("a\"", 100)}
	for i := range 256 {
		cases = append(cases, string(rune(i)), string([]byte{byte(i)}))
		// Each byte at each place of a run long enough to be read eight
		// bytes at a time, alone and next to another.
		for p := range 19 {
			b := []byte("uploads/alice/0123")
			b = append(b[:p:p], append([]byte{byte(i)}, b[p:]...)...)
			cases = append(cases, string(b), string(b)+"\x00tail", string(b)+string(b))
		}
	}
	for _, c := range cases {
		want, _ := marshalJSON(c)
		if got := appendJSONString(nil, c); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", c, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("a\"b\\c\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := marshalJSON(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}
