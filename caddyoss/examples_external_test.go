package caddyoss

// Examples that combine oss_upload with a module the project does not
// depend on (say caddy-ratelimit, for requests per minute next to the
// quota's bytes per day). Their fence names the module:
//
//	```caddyfile needs=github.com/mholt/caddy-ratelimit
//
// When this test binary links the module, the block runs as written.
// When it does not (the usual case: the project's go.mod does not require
// it), the lines of that module's directives are removed (each directive
// with its block, and the global "order <directive> ..." lines, with the
// global options block when nothing else is left in it) and the rest of
// the block runs as every example does; the test log names what was
// removed. So everything but those directives is adapted and run, and the
// removed directives themselves are not checked here.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// externalModule is a module an example may need: its Caddy module id,
// which tells whether this binary links it, and its Caddyfile directives.
type externalModule struct {
	id         string
	directives []string
}

var externalModules = map[string]externalModule{
	"github.com/mholt/caddy-ratelimit": {id: "http.handlers.rate_limit", directives: []string{"rate_limit"}},
}

// withoutExternal returns the text of b to run: as written when every
// module b needs is linked, else without the directives of those that are
// not, with a description of each removed part. A module not listed in
// externalModules, or one whose directives the block does not use, is an
// error: the fence would be stale.
func withoutExternal(b docBlock) (string, []string, error) {
	var drop []string
	for _, path := range b.needs {
		m, ok := externalModules[path]
		if !ok {
			return "", nil, fmt.Errorf("needs=%s: not in externalModules; add the module's id and directives there", path)
		}
		for _, d := range m.directives {
			if !slices.Contains(caddyfileDirectives(b.text), d) {
				return "", nil, fmt.Errorf("needs=%s, but the block uses no %s directive", path, d)
			}
		}
		if _, err := caddy.GetModule(m.id); err != nil {
			drop = append(drop, m.directives...)
		}
	}
	if len(drop) == 0 {
		return b.text, nil, nil
	}
	lines := strings.Split(b.text, "\n")
	keep := make([]bool, len(lines))
	var removed []string
	depth, globalAt, skipTo := 0, -1, -1
	for i, line := range lines {
		tok := caddyfileTokens(line)
		opens := len(tok) > 0 && tok[len(tok)-1] == "{"
		closes := len(tok) == 1 && tok[0] == "}"
		keep[i] = true
		switch {
		case skipTo >= 0:
			keep[i] = false
		case len(tok) == 0:
		case depth == 0 && len(tok) == 1 && opens:
			globalAt = i
		case depth == 1 && globalAt >= 0 && tok[0] == "order" && len(tok) > 1 && slices.Contains(drop, tok[1]):
			keep[i] = false
			removed = append(removed, fmt.Sprintf("line %d (%s)", b.line+1+i, strings.TrimSpace(line)))
		case depth >= 1 && slices.Contains(drop, tok[0]):
			keep[i] = false
			what := fmt.Sprintf("line %d (the %s directive)", b.line+1+i, tok[0])
			if opens {
				skipTo = depth
				what = fmt.Sprintf("line %d (the %s directive) and its block", b.line+1+i, tok[0])
			}
			removed = append(removed, what)
		}
		switch {
		case opens:
			depth++
		case closes:
			depth--
			if depth == skipTo {
				skipTo = -1
			}
			if depth == 0 && globalAt >= 0 {
				empty := true
				for j := globalAt + 1; j < i; j++ {
					empty = empty && (!keep[j] || len(caddyfileTokens(lines[j])) == 0)
				}
				if empty {
					keep[globalAt], keep[i] = false, false
					removed = append(removed, fmt.Sprintf("lines %d and %d (the global options block, empty without them)", b.line+1+globalAt, b.line+1+i))
				}
				globalAt = -1
			}
		}
	}
	if depth != 0 {
		return "", nil, fmt.Errorf("unbalanced braces")
	}
	var out []string
	for i, line := range lines {
		if keep[i] {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n"), removed, nil
}

// caddyfileDirectives are the first tokens of the lines of text.
func caddyfileDirectives(text string) []string {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		if tok := caddyfileTokens(line); len(tok) > 0 {
			names = append(names, tok[0])
		}
	}
	return names
}
