package caddyoss

import (
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
