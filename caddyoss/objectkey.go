package caddyoss

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
)

// defaultKeyTemplate names objects by a random id plus the extension of the
// client's filename.
const defaultKeyTemplate = "{id}{ext}"

// maxKeyBytes is OSS's limit on object key length.
const maxKeyBytes = 1023

// maxNameBytes bounds the sanitized {filename}.
const maxNameBytes = 200

// newObjectID returns 128 random bits as 32 hex characters.
func newObjectID() string {
	var b [32]byte
	return string(appendObjectID(b[:0]))
}

// appendObjectID appends 128 random bits as 32 hex characters.
func appendObjectID(dst []byte) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.AppendEncode(dst, b[:])
}

// sanitizeFilename reduces a client-supplied filename to a safe single
// path segment: the base name only, control and separator characters
// replaced, dots trimmed from both ends, at most maxNameBytes. It returns ""
// when nothing usable is left.
func sanitizeFilename(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), ".")
	for len(s) > maxNameBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// sanitizeExt returns the lower-cased extension of a client filename with its
// dot (".png"), or "" when it has none or it is not a short alphanumeric run.
func sanitizeExt(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return ""
	}
	ext := name[i+1:]
	if ext == "" || len(ext) > 16 {
		return ""
	}
	lower := true
	for j := 0; j < len(ext); j++ {
		switch c := ext[j]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			lower = false
		default:
			return ""
		}
	}
	if lower {
		return name[i:] // already ".ext"
	}
	return "." + strings.ToLower(ext)
}

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

// keyPrefix expands request placeholders in the configured prefix and checks
// the result. A placeholder that expands to nothing is an error: a prefix
// such as uploads/{http.auth.user.id}/ must never collapse into a shared one.
func (h *Handler) keyPrefix(repl *caddy.Replacer) (string, error) {
	if !strings.Contains(h.KeyPrefix, "{") {
		return h.KeyPrefix, nil
	}
	tpl := &h.keyPrefixTpl
	if tpl.raw != h.KeyPrefix { // not provisioned, or changed since
		t := newRequestTemplate(h.KeyPrefix)
		tpl = &t
	}
	var buf [256]byte
	b, err := tpl.appendExpanded(buf[:0], repl)
	if err != nil {
		return "", fmt.Errorf("key_prefix: %v", err)
	}
	p := string(b)
	if err := checkKeyPart(p); err != nil {
		return "", fmt.Errorf("key_prefix expands to an invalid key prefix: %v", err)
	}
	// '*' and '?' would widen the STS session policy's resource to other
	// prefixes; '$' would let OSS substitute ${filename} after its policy
	// check.
	if err := checkExpanded(p); err != nil {
		return "", fmt.Errorf("key_prefix expands to a prefix that %v", err)
	}
	// Each placeholder is one path segment: a value with '/' would reach
	// into a prefix of another value's.
	if !h.scope.FitsPrefix(p) {
		return "", errors.New("key_prefix expands to a prefix with a placeholder value that is not one path segment (it contains '/')")
	}
	return p, nil
}

// objectKey generates the object key for an upload below prefix from the
// key template and the client's filename.
func (h *Handler) objectKey(repl *caddy.Replacer, prefix, filename string) (string, error) {
	tpl := h.KeyTemplate
	if tpl == "" {
		tpl = defaultKeyTemplate
	}
	var name string
	if tpl == defaultKeyTemplate {
		// The common case: prefix, random id and extension written into
		// one buffer, without a replacer.
		var buf [128]byte
		b := append(buf[:0], prefix...)
		b = appendObjectID(b)
		if ext := sanitizeExt(filename); ext != "" {
			b = append(b, ext...)
		}
		if len(b) > maxKeyBytes {
			return "", fmt.Errorf("object key longer than %d bytes", maxKeyBytes)
		}
		// keyPrefix checked the prefix (Validate a static one), and hex
		// digits and a sanitized extension add no segment, control
		// character or '$': only the length can fail.
		return string(b), nil
	} else {
		// Configured placeholders first, so nothing from the client is
		// ever interpreted as a placeholder.
		name = repl.ReplaceKnown(tpl, "")
		clean := sanitizeFilename(filename)
		if clean == "" {
			clean = "file"
		}
		name = strings.NewReplacer(
			"{id}", newObjectID(),
			"{ext}", sanitizeExt(filename),
			"{filename}", clean,
		).Replace(name)
	}
	key := prefix + name
	if name == "" || strings.HasSuffix(key, "/") {
		return "", errors.New("key_template produced an empty object name")
	}
	return key, checkObjectKey(key)
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
