package callback

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestBindingRoundTripAndTamper(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	exp := time.Unix(2000000000, 0)
	vars := map[string]string{"user": "alice", "team": "a b"}
	for _, tc := range []struct {
		kind  Kind
		scope string
	}{{ExactKey, "u/alice/1.png"}, {Prefix, "u/alice/"}, {STS, "u/alice/"}, {Prefix, ""}, {STS, ""}} {
		v := Encode(key, tc.kind, "bkt", tc.scope, exp, vars)
		b, err := Parse(v)
		if err != nil || b.Kind != tc.kind || b.Expiry != exp.Unix() {
			t.Fatalf("%q: %+v %v", v, b, err)
		}
		if b.String() != v {
			t.Errorf("%q spelled back as %q", v, b.String())
		}
		if tc.kind != ExactKey && b.Scope != tc.scope {
			t.Errorf("scope %q", b.Scope)
		}
		if tc.kind == ExactKey && b.Scope != "" {
			t.Errorf("an exact-key binding carries its key: %q", v)
		}
		good := MAC(key, tc.kind, "bkt", tc.scope, b.Expiry, vars)
		if string(good) != string(b.MAC) {
			t.Fatal("MAC does not round-trip")
		}
		others := map[string][]byte{
			"key":     MAC([]byte(strings.Repeat("K", 32)), tc.kind, "bkt", tc.scope, b.Expiry, vars),
			"kind":    MAC(key, 'x', "bkt", tc.scope, b.Expiry, vars),
			"bucket":  MAC(key, tc.kind, "bkt2", tc.scope, b.Expiry, vars),
			"scope":   MAC(key, tc.kind, "bkt", tc.scope+"x", b.Expiry, vars),
			"expiry":  MAC(key, tc.kind, "bkt", tc.scope, b.Expiry+1, vars),
			"var":     MAC(key, tc.kind, "bkt", tc.scope, b.Expiry, map[string]string{"user": "bob", "team": "a b"}),
			"no var":  MAC(key, tc.kind, "bkt", tc.scope, b.Expiry, map[string]string{"user": "alice"}),
			"extra":   MAC(key, tc.kind, "bkt", tc.scope, b.Expiry, map[string]string{"user": "alice", "team": "a b", "x": ""}),
			"shift":   MAC(key, tc.kind, "bkt", tc.scope, b.Expiry, map[string]string{"user": "alice\x00team", "": "a b"}),
			"handler": MAC(HandlerKey(key, "other"), tc.kind, "bkt", tc.scope, b.Expiry, vars),
		}
		for name, m := range others {
			if string(m) == string(good) {
				t.Errorf("%c: changing the %s keeps the MAC", tc.kind, name)
			}
		}
	}
}

// Every spelling of a binding but its own is refused: generated variants
// of each part (sign, leading zeros, padding, line breaks, other base64
// alphabets, stray bits, case) and structural changes.
func TestParseBindingOneSpelling(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	good := Encode(key, Prefix, "bkt", "u/alice/", time.Unix(2000000000, 0), nil)
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	p := strings.Split(good, ".")
	join := func(q ...string) string { return strings.Join(q, ".") }
	with := func(i int, v string) string { q := append([]string(nil), p...); q[i] = v; return join(q...) }
	var variants []string
	for _, exp := range []string{"+" + p[2], "-" + p[2], "0" + p[2], "00" + p[2], p[2] + " ", " " + p[2], p[2] + "\n",
		"2e9", "2000000000.0", "", "0", "x", "1_000", "２000000000", "99999999999999999999"} {
		variants = append(variants, with(2, exp))
	}
	for _, i := range []int{3, 4} {
		part := p[i]
		variants = append(variants,
			with(i, part+"="), with(i, part+"=="), with(i, part+"\n"), with(i, part[:2]+"\n"+part[2:]),
			with(i, part+"\r\n"), with(i, " "+part), with(i, strings.ReplaceAll(strings.ReplaceAll(part, "-", "+"), "_", "/")+"+/"),
			with(i, base64.StdEncoding.EncodeToString(mustDecode(t, part))),
		)
		// Stray bits: the same bytes with the last character's unused bits set.
		if last := part[len(part)-1]; len(mustDecode(t, part))%3 != 0 {
			for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
				v := part[:len(part)-1] + string(c)
				if byte(c) != last {
					if d, err := base64.RawURLEncoding.DecodeString(v); err == nil && string(d) == string(mustDecode(t, part)) {
						variants = append(variants, with(i, v))
					}
				}
			}
		}
	}
	variants = append(variants, "", "2", good+".", good+".x", "1"+good[1:], "3"+good[1:], strings.Replace(good, ".p.", ".P.", 1),
		strings.Replace(good, ".p.", ".z.", 1), strings.Replace(good, ".p.", ".pp.", 1), strings.Replace(good, ".p.", ".k.", 1),
		join(p[0], p[1], p[2], p[3]), " "+good, good+" ", good+"\n")
	for _, v := range variants {
		if v == good {
			continue
		}
		if _, err := Parse(v); err == nil {
			t.Errorf("accepted %q", v)
		}
	}
	// An exact-key binding carries no scope; a prefix binding may carry an
	// empty one (an empty key_prefix).
	if _, err := Parse(join(p[0], "k", p[2], p[3], p[4])); err == nil {
		t.Error("an exact-key binding with a scope was accepted")
	}
	if _, err := Parse(join(p[0], "p", p[2], "", p[4])); err != nil {
		t.Errorf("an empty prefix scope was refused: %v", err)
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdentities(t *testing.T) {
	h := HandlerID("bkt", "u/{user}/", "/cb", "https://site/cb")
	for _, other := range []string{
		HandlerID("bkt2", "u/{user}/", "/cb", "https://site/cb"),
		HandlerID("bkt", "v/{user}/", "/cb", "https://site/cb"),
		HandlerID("bkt", "u/{user}/", "/cb2", "https://site/cb"),
		HandlerID("bkt", "u/{user}/", "/cb", "https://site/cb?x"),
		HandlerID("bk", "tu/{user}/", "/cb", "https://site/cb"),
	} {
		if other == h {
			t.Error("handler id ignores a part")
		}
	}
	if len(h) != 32 || h != HandlerID("bkt", "u/{user}/", "/cb", "https://site/cb") {
		t.Errorf("handler id %q is not stable", h)
	}
	e := EventID(h, "bkt", "u/a/1.png", "ETAG", "2.k.1.x.y")
	for _, other := range []string{
		EventID("other", "bkt", "u/a/1.png", "ETAG", "2.k.1.x.y"),
		EventID(h, "bkt", "u/a/2.png", "ETAG", "2.k.1.x.y"),
		EventID(h, "bkt", "u/a/1.png", "ETAG2", "2.k.1.x.y"),
		EventID(h, "bkt", "u/a/1.png", "ETAG", "2.k.2.x.y"),
		EventID(h, "bkt", "u/a/1.png", "ETAG", ""),
	} {
		if other == e {
			t.Error("event id ignores a part")
		}
	}
}
