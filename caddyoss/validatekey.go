package caddyoss

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
)

// checkKeyPart rejects values that could escape a prefix or break OSS key
// rules: invalid UTF-8, control characters, backslashes, a leading '/',
// empty, "." or ".." segments, and keys longer than 1023 bytes. Trailing
// '/' is allowed (prefixes end with one).
func checkKeyPart(s string) error {
	if len(s) > maxKeyBytes {
		return fmt.Errorf("longer than %d bytes", maxKeyBytes)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.HasPrefix(s, "/") {
		return errors.New("starts with '/'")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("contains %q", r)
		}
	}
	if s == "" {
		return nil
	}
	for rest, more := strings.TrimSuffix(s, "/"), true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		switch seg {
		case "":
			return errors.New("contains an empty path segment")
		case ".", "..":
			return fmt.Errorf("contains a %q segment", seg)
		}
	}
	return nil
}

// templatePlaceholderRE matches one placeholder of a key template.
var templatePlaceholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// checkKeyTemplate checks a key template at load: every placeholder is
// {id}, {ext}, {filename}, a request placeholder ({http.*}) or a global one
// that names no file ({env.*}, and the {time.*} and {system.*} that Caddy
// knows), and the template's own text is a valid part of a key. Whether
// it contains {id} is the caller's check.
func checkKeyTemplate(tpl string) error {
	var unknown []string
	global := caddy.NewReplacer()
	for _, ph := range templatePlaceholderRE.FindAllString(tpl, -1) {
		name := ph[1 : len(ph)-1]
		switch ns, rest, _ := strings.Cut(name, "."); {
		case name == "id", name == "ext", name == "filename":
			continue
		case (ns == "http" || ns == "env") && rest != "":
			continue
		case ns == "time" || ns == "system":
			if _, ok := global.Get(name); ok {
				continue
			}
		}
		unknown = append(unknown, ph)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("key_template: %q uses unknown placeholder(s) %s; use {id}, {ext}, {filename} or a Caddy placeholder ({http.*}, {env.*}, {time.*}, {system.*})",
			tpl, strings.Join(unknown, " "))
	}
	static := templatePlaceholderRE.ReplaceAllString(tpl, "x")
	if err := checkKeyPart(static); err != nil {
		return fmt.Errorf("key_template: %q %v", tpl, err)
	}
	if strings.HasSuffix(static, "/") {
		return fmt.Errorf("key_template: %q ends with '/', which names a folder, not an object", tpl)
	}
	if strings.Contains(static, "$") {
		return fmt.Errorf("key_template: %q contains '$', which OSS would read as a ${...} variable", tpl)
	}
	return nil
}

// templateHasID reports whether a key template contains {id}, which makes
// every generated key unique.
func templateHasID(tpl string) bool {
	return strings.Contains(tpl, "{id}")
}

// checkObjectKey checks a generated object key.
func checkObjectKey(key string) error {
	if err := checkKeyPart(key); err != nil {
		return fmt.Errorf("object key %v", err)
	}
	// OSS substitutes ${filename} in a PostObject key after the policy
	// check, so a '$' could move the object elsewhere.
	if strings.Contains(key, "$") {
		return errors.New("object key contains '$'")
	}
	return nil
}
