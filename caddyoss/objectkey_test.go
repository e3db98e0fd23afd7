package caddyoss

import (
	"math/rand/v2"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestSanitizeFilename(t *testing.T) {
	tests := []struct{ in, name, ext string }{
		{"photo.PNG", "photo.PNG", ".png"},
		{"../../etc/passwd", "passwd", ""},
		{`..\..\win.ini`, "win.ini", ".ini"},
		{"a b\x00c.txt", "a_b_c.txt", ".txt"},
		{"...", "", ""},
		{".bashrc", "bashrc", ""},
		{"报告.pdf", "报告.pdf", ".pdf"},
		{"x.tar.gz", "x.tar.gz", ".gz"},
		{"x.ph p", "x.ph_p", ""},
		{"noext", "noext", ""},
		{"x." + strings.Repeat("a", 17), "x." + strings.Repeat("a", 17), ""},
		{strings.Repeat("é", 300) + ".jpg", strings.Repeat("é", 100), ".jpg"},
		{"\xff\xfe.png", "png", ""},
	}
	for _, tc := range tests {
		if got := sanitizeFilename(tc.in); got != tc.name {
			t.Errorf("sanitizeFilename(%q) = %q, want %q", tc.in, got, tc.name)
		}
		if got := sanitizeExt(tc.in); got != tc.ext {
			t.Errorf("sanitizeExt(%q) = %q, want %q", tc.in, got, tc.ext)
		}
	}
}

func TestCheckKeyPart(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"", true}, {"uploads/", true}, {"uploads/7/a.png", true}, {"a", true},
		{"/abs", false}, {"a/../b", false}, {"../a", false}, {"a/./b", false}, {"a//b", false},
		{`a\b`, false}, {"a\x00b", false}, {"a\nb", false}, {"a\x7f", false}, {"\xff", false},
		{strings.Repeat("k", 1023), true}, {strings.Repeat("k", 1024), false},
	}
	for _, tc := range tests {
		if err := checkKeyPart(tc.in); (err == nil) != tc.ok {
			t.Errorf("checkKeyPart(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestObjectKeyTemplate(t *testing.T) {
	tests := []struct {
		template, filename string
		want               *regexp.Regexp
	}{
		{"", "a.JPG", regexp.MustCompile(`^p/[0-9a-f]{32}\.jpg$`)},
		{"{filename}", "../x/{http.request.header.Secret}.txt", regexp.MustCompile(`^p/_http\.request\.header\.Secret_\.txt$`)},
		{"{http.request.header.X-Day}/{id}", "f", regexp.MustCompile(`^p/mon/[0-9a-f]{32}$`)},
		{"{filename}", "", regexp.MustCompile(`^p/file$`)},
	}
	for _, tc := range tests {
		h := &Handler{KeyTemplate: tc.template}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Day", "mon")
		req.Header.Set("Secret", "s3cr3t")
		got, err := h.objectKey(replacer(withReplacer(req)), "p/", tc.filename)
		if err != nil || !tc.want.MatchString(got) {
			t.Errorf("template %q, filename %q: key %q, err %v", tc.template, tc.filename, got, err)
		}
	}
	h := &Handler{KeyTemplate: "{http.request.header.Nope}"}
	if _, err := h.objectKey(replacer(withReplacer(httptest.NewRequest("GET", "/", nil))), "p/", "x"); err == nil {
		t.Error("an empty object name was accepted")
	}
}

func TestObjectKeyTemplateCheck(t *testing.T) {
	tests := []struct{ template, want string }{
		{"", ""},
		{"{id}{ext}", ""},
		{"{filename}", ""}, // {id} is the caller's check
		{"{http.auth.user.id}/{http.request.header.X-Day}/{id}", ""},
		{"{env.STAGE}/{time.now.year}/{system.hostname}-{id}", ""},
		{"{user}/{id}", "unknown placeholder(s) {user}"},
		{"{vars.user}/{id}", "unknown placeholder(s) {vars.user}"}, // JSON has no {vars.*}: {http.vars.*}
		{"{file./etc/passwd}{id}", "unknown placeholder(s) {file./etc/passwd}"},
		{"{time.now.yaer}{id}{}{http.}", "unknown placeholder(s) {time.now.yaer} {} {http.}"},
		{"/{id}", "starts with '/'"},
		{"a/../{id}", `contains a ".." segment`},
		{"a//{id}", "empty path segment"},
		{"{id}/", "ends with '/'"},
		{"${filename}-{id}", "contains '$'"},
	}
	for _, tc := range tests {
		err := checkKeyTemplate(tc.template)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkKeyTemplate(%q) = %v, want %q", tc.template, err, tc.want)
		}
	}
}

// TestSanitizeExtGenerated compares sanitizeExt with a plain statement of
// its rule on generated names.
func TestSanitizeExtGenerated(t *testing.T) {
	// The last path segment (either separator) of the valid UTF-8, with
	// something before its last dot and 1–16 letters or digits after it.
	extRE := regexp.MustCompile(`^[^/\\]*[^/\\]\.([A-Za-z0-9]{1,16})$`)
	rule := func(name string) string {
		segs := regexp.MustCompile(`[/\\]`).Split(strings.ToValidUTF8(name, ""), -1)
		if m := extRE.FindStringSubmatch(segs[len(segs)-1]); m != nil {
			return "." + strings.ToLower(m[1])
		}
		return ""
	}
	pieces := []string{"a", "Z", "9", ".", "/", `\`, "é", "\xff", " ", "-", "PNG", "png", "x.y", strings.Repeat("b", 16)}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 20000 {
		var b strings.Builder
		for n := rng.IntN(6); n >= 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		if got, want := sanitizeExt(b.String()), rule(b.String()); got != want {
			t.Fatalf("sanitizeExt(%q) = %q, want %q", b.String(), got, want)
		}
	}
}

// TestDefaultObjectKeyIsChecked: the default key template skips the full
// key check because a checked prefix, hex digits and a sanitized extension
// cannot fail it. Generated prefixes that pass the prefix checks and
// generated filenames give keys that pass the full check, and a key too
// long is refused.
func TestDefaultObjectKeyIsChecked(t *testing.T) {
	h := &Handler{}
	pieces := []string{"u", "/", "é", "a b", "-", "_", ".", "..", "x.y", "世界", "%2F", "+", "~"}
	names := []string{"a.png", "A.PNG", "x", ".bashrc", "a.tar.gz", "../../e.JS", "é.jpé", "a." + strings.Repeat("b", 20), "\xff.png", ""}
	rng := rand.New(rand.NewPCG(11, 12))
	checked := 0
	for range 5000 {
		var b strings.Builder
		for n := rng.IntN(6); n >= 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		prefix := b.String()
		if checkKeyPart(prefix) != nil || checkExpanded(prefix) != nil {
			continue // keyPrefix would have refused it
		}
		checked++
		for _, name := range names {
			key, err := h.objectKey(nil, prefix, name)
			if err != nil {
				t.Fatalf("prefix %q, name %q: %v", prefix, name, err)
			}
			if !strings.HasPrefix(key, prefix) || checkObjectKey(key) != nil {
				t.Fatalf("prefix %q, name %q: key %q fails the full check: %v", prefix, name, key, checkObjectKey(key))
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d prefixes were tried", checked)
	}
	if _, err := h.objectKey(nil, strings.Repeat("a/", 500), "a.png"); err == nil || !strings.Contains(err.Error(), "longer than 1023") {
		t.Errorf("a key over 1023 bytes: %v", err)
	}
}
