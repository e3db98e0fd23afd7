package callback

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestConfirmTokenRoundTrip(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	exp := time.Unix(2000000000, 0)
	for _, vars := range []map[string]string{
		nil, {}, {"user": "alice"}, {"user": "a&b=c", "team": "<script>\u00e9\u2028"}, {"z": "", "a": "x"},
	} {
		binding := Encode(key, Prefix, "bkt", "u/alice/", exp, vars)
		tok := ConfirmToken(binding, vars)
		b, got, err := ParseConfirmToken(tok)
		if err != nil {
			t.Fatalf("%v: %q: %v", vars, tok, err)
		}
		if b.String() != binding || len(got) != len(vars) {
			t.Fatalf("%v: read back %q %v", vars, b.String(), got)
		}
		for k, v := range vars {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
		if strings.ContainsAny(tok, "+/= \n") {
			t.Errorf("token %q is not URL-safe", tok)
		}
	}
}

// Every spelling of a token but its own is refused: the binding's
// variants, and generated variants of the variables' JSON (order,
// spacing, escapes, repeats, types) and of their base64.
func TestParseConfirmTokenOneSpelling(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	vars := map[string]string{"team": "a", "user": "alice"}
	binding := Encode(key, STS, "bkt", "u/alice/", time.Unix(2000000000, 0), vars)
	good := ConfirmToken(binding, vars)
	if _, _, err := ParseConfirmToken(good); err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	part := good[strings.LastIndexByte(good, '.')+1:]
	variants := []string{
		"", ".", binding, binding + ".", good + ".", good + "=", good + "\n", " " + good,
		binding + "." + base64.StdEncoding.EncodeToString([]byte(`{"team":"a","user":"alice"}`)),
		binding + "." + base64.URLEncoding.EncodeToString([]byte(`{"team":"a","user":"alice"}`)),
		binding + "." + part[:len(part)-1],
		binding + ".." + part,
		strings.Replace(good, "2.s.", "2.S.", 1),
		"0" + good,
	}
	for _, j := range []string{
		`{"user":"alice","team":"a"}`, // order
		`{"team": "a","user":"alice"}`, ` {"team":"a","user":"alice"}`, `{"team":"a","user":"alice"} `,
		`{"team":"\u0061","user":"alice"}`, `{"team":"a","user":"alice","user":"alice"}`,
		`{"team":"a","user":"bob","user":"alice"}`, `{"team":"a","user":["alice"]}`, `{"team":"a","user":1}`,
		`{"team":"a","user":null}`, `null`, `[]`, `""`, `{"team":"a","user":"alice","oss_binding":"x"}`,
		`{"team":"a","user":"al\xffice"}`, `{"team":"a","user":"alice"}x`,
	} {
		variants = append(variants, binding+"."+enc(j))
	}
	for _, v := range variants {
		if v == good {
			continue // another alphabet that spells these bytes the same
		}
		if _, _, err := ParseConfirmToken(v); err == nil {
			t.Errorf("accepted %q", v)
		}
	}
	// Tokens without variables spell them {}.
	bare := Encode(key, ExactKey, "bkt", "u/a.png", time.Unix(2000000000, 0), nil)
	if tok := ConfirmToken(bare, nil); tok != bare+"."+enc("{}") {
		t.Errorf("no variables: %q", tok)
	}
	if _, _, err := ParseConfirmToken(bare + "." + enc("")); err == nil {
		t.Error("accepted an empty variable part")
	}
}
