package callback

import (
	"fmt"
	"strings"
)

// Scope is a handler's key_prefix template as the space its bindings may
// cover: its literal text, and for each placeholder exactly one non-empty
// path segment (a placeholder must be followed by '/').
type Scope struct {
	parts []scopePart
}

type scopePart struct {
	literal     string
	placeholder bool
}

// NewScope reads a key_prefix template. Every placeholder must end a path
// segment: uploads/{http.auth.user.id}/ is a scope, while
// uploads/{http.auth.user.id} would let user "al" write below
// uploads/alice/.
func NewScope(template string) (Scope, error) {
	var s Scope
	for rest := template; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			s.parts = append(s.parts, scopePart{literal: rest})
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			s.parts = append(s.parts, scopePart{literal: rest})
			break
		}
		end += open
		if open > 0 {
			s.parts = append(s.parts, scopePart{literal: rest[:open]})
		}
		name := rest[open : end+1]
		rest = rest[end+1:]
		if !strings.HasPrefix(rest, "/") {
			return Scope{}, fmt.Errorf("key_prefix: the placeholder %s must be followed by '/' (as in %q), or one user's prefix would contain another's", name, template[:len(template)-len(rest)]+"/")
		}
		s.parts = append(s.parts, scopePart{placeholder: true})
	}
	return s, nil
}

// match reports how much of s the template covers: the length of the
// expanded prefix at its start, or -1 when s does not start with one.
func (sc Scope) match(s string) int {
	i := 0
	for _, p := range sc.parts {
		if !p.placeholder {
			if !strings.HasPrefix(s[i:], p.literal) {
				return -1
			}
			i += len(p.literal)
			continue
		}
		n := strings.IndexByte(s[i:], '/')
		if n <= 0 { // empty, or no '/' after it
			return -1
		}
		i += n
	}
	return i
}

// FitsPrefix reports whether prefix is exactly one expansion of the
// template.
func (sc Scope) FitsPrefix(prefix string) bool {
	return sc.match(prefix) == len(prefix)
}

// Contains reports whether object lies below one expansion of the
// template.
func (sc Scope) Contains(object string) bool {
	n := sc.match(object)
	return n >= 0 && n < len(object)
}
