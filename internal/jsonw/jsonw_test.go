package jsonw

import (
	"encoding/json"
	"strings"
	"testing"
)

// encoderOutput is what encoding/json writes for v without HTML escaping,
// written here without Marshal so the two are compared, not one with itself.
func encoderOutput(t testing.TB, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// AppendString must write what encoding/json (without HTML escaping)
// writes: signed policies depend on it.
func TestAppendStringMatchesEncoder(t *testing.T) {
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
		want := encoderOutput(t, c)
		if got := AppendString(nil, c); string(got) != want {
			t.Errorf("%q: got %s, want %s", c, got, want)
		}
		// Plain is exact on ASCII and never claims a byte that needs
		// escaping (it may refuse non-ASCII that would not).
		same := want == `"`+c+`"`
		if got := Plain([]byte(c)); got && !same || !got && same && isASCII(c) {
			t.Errorf("Plain(%q) = %v, encoder writes %s", c, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"b\\c\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want := encoderOutput(t, s)
		if got := AppendString(nil, s); string(got) != want {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// An Object's members, nested objects and raw values read as
// encoding/json writes the same map.
func TestObjectMatchesEncoder(t *testing.T) {
	tests := []struct {
		name string
		fill func(*Object)
		want any
	}{
		{"empty", func(*Object) {}, map[string]any{}},
		{"members", func(o *Object) {
			o.Str("a", "x\"<y>")
			o.Int("b", -42)
			o.Raw("c", []byte(`[1,"two"]`))
		}, map[string]any{"a": "x\"<y>", "b": -42, "c": []any{1, "two"}}},
		{"nested", func(o *Object) {
			o.Object("outer", func(in *Object) {
				in.Str("k", "v")
				in.Object("empty", func(*Object) {})
			})
			o.Str("after", "\u2028")
		}, map[string]any{"outer": map[string]any{"k": "v", "empty": map[string]any{}}, "after": "\u2028"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Object{B: []byte("prefix ")}
			o.Open()
			tt.fill(&o)
			o.Close()
			got := strings.TrimPrefix(string(o.B), "prefix ")
			var gotV, wantV any
			if err := json.Unmarshal([]byte(got), &gotV); err != nil {
				t.Fatalf("%s is not JSON: %v", got, err)
			}
			_ = json.Unmarshal([]byte(encoderOutput(t, tt.want)), &wantV)
			if encoderOutput(t, gotV) != encoderOutput(t, wantV) {
				t.Errorf("got %s, want %s", got, encoderOutput(t, tt.want))
			}
		})
	}
}

func TestMarshalKeepsHTML(t *testing.T) {
	v := map[string]string{"k": "<a href=\"x\">&</a>", "u": "\u2028"}
	got, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := encoderOutput(t, v); string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if strings.Contains(string(got), `\u003c`) {
		t.Errorf("%s escapes HTML", got)
	}
}

// A buffer from Get is empty whatever was in it when it was Put, and a
// buffer grown past the pooled size is not kept.
func TestPoolReturnsEmptyBuffers(t *testing.T) {
	for range 100 {
		b := Get()
		if len(*b) != 0 {
			t.Fatalf("Get returned %d bytes", len(*b))
		}
		*b = append(*b, "leftover"...)
		Put(b)
	}
	big := make([]byte, 0, maxPooled+1)
	Put(&big)
	for range 100 {
		if b := Get(); cap(*b) > maxPooled {
			t.Fatalf("Get returned a %d-byte buffer", cap(*b))
		}
	}
}
