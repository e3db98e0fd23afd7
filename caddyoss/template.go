package caddyoss

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// requestTemplate is a configured value with request placeholders (such as
// key_prefix uploads/{http.auth.user.id}/), split once at provision into
// literal text and placeholder names, so that a request only looks its
// placeholders up. A template whose syntax needs more than "{name}" (escaped
// braces, a brace without its pair) is expanded by the replacer's own parser
// instead, with the same result.
type requestTemplate struct {
	raw   string
	parts []templatePart // nil: expand raw with Replacer.ReplaceOrErr
}

type templatePart struct {
	text        string // literal text, or the placeholder's name
	placeholder bool
}

func newRequestTemplate(s string) requestTemplate {
	t := requestTemplate{raw: s}
	if strings.Contains(s, `\`) {
		return t // escapes: the replacer's parser decides
	}
	var parts []templatePart
	for rest := s; rest != ""; {
		open := strings.IndexByte(rest, '{')
		close := strings.IndexByte(rest, '}')
		if open < 0 && close < 0 {
			parts = append(parts, templatePart{text: rest})
			break
		}
		if open < 0 || close < open {
			return t // a '}' without its '{'
		}
		if next := strings.IndexByte(rest[open+1:], '{'); close < 0 || close == open+1 ||
			(next >= 0 && open+1+next < close) {
			return t // unclosed, empty or nested
		}
		if open > 0 {
			parts = append(parts, templatePart{text: rest[:open]})
		}
		parts = append(parts, templatePart{text: rest[open+1 : close], placeholder: true})
		rest = rest[close+1:]
	}
	t.parts = parts
	return t
}

// appendExpanded appends the template expanded with repl to dst, failing as
// Replacer.ReplaceOrErr(raw, true, true) does: on a placeholder that is
// unknown or expands to nothing.
func (t *requestTemplate) appendExpanded(dst []byte, repl *caddy.Replacer) ([]byte, error) {
	if t.parts == nil {
		s, err := repl.ReplaceOrErr(t.raw, true, true)
		return append(dst, s...), err
	}
	for _, p := range t.parts {
		if !p.placeholder {
			dst = append(dst, p.text...)
			continue
		}
		v, ok := repl.Get(p.text)
		if !ok {
			return dst, fmt.Errorf("unrecognized placeholder {%s}", p.text)
		}
		s := caddy.ToString(v)
		if s == "" {
			return dst, fmt.Errorf("evaluated placeholder {%s} is empty", p.text)
		}
		dst = append(dst, s...)
	}
	return dst, nil
}

// checkExpanded refuses expanded values carrying characters with meaning to
// RAM or OSS, or control characters (C0, DEL and C1: U+0080 to U+009F,
// which no name needs and which some logs and terminals act on).
func checkExpanded(s string) error {
	if i := strings.IndexAny(s, "*?$"); i >= 0 {
		return fmt.Errorf("contains %q", s[i])
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return fmt.Errorf("contains the control character %q", r)
		}
	}
	return nil
}
