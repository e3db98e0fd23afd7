package caddyoss

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// caddyfileTokens are a line's tokens up to a comment.
func caddyfileTokens(line string) []string {
	f := strings.Fields(line)
	for i, tok := range f {
		if strings.HasPrefix(tok, "#") {
			return f[:i]
		}
	}
	return f
}

// exampleFacts is what the rewrite learned about an example.
type exampleFacts struct {
	auth     bool // basic_auth or forward_auth covers something
	upstream bool // reverse_proxy to the app
}

// rewriteExample points an example at the test's site address, emulator,
// login service and app: the site address becomes exSite, oss_upload gets
// the emulator's endpoint and upload_url, sts its endpoint, callback its
// url on exSite and the emulator's trusted_key, reverse_proxy and
// forward_auth the app's and the login service's addresses, and basic_auth
// accounts a hash of exPassword. Everything else runs as written.
func rewriteExample(text string, emu *ossemu.Emulator, keyFile, appAddr, authAddr, hash string, env map[string]string) (string, exampleFacts, error) {
	var out strings.Builder
	var facts exampleFacts
	var stack []string
	top := func(n int) string {
		if len(stack) < n {
			return ""
		}
		return stack[len(stack)-n]
	}
	sites := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		tok := caddyfileTokens(line)
		emit := func(toks ...string) { out.WriteString(indent + strings.Join(toks, " ") + "\n") }
		if len(tok) == 0 {
			continue
		}
		if len(tok) == 1 && tok[0] == "}" {
			if len(stack) == 0 {
				return "", facts, fmt.Errorf("unbalanced }")
			}
			stack = stack[:len(stack)-1]
			emit("}")
			continue
		}
		opens := tok[len(tok)-1] == "{"
		switch {
		case len(stack) == 0:
			if !opens || tok[0] == "{" || strings.HasPrefix(tok[0], "(") {
				return "", facts, fmt.Errorf("top-level line %q is not a site block (global options and snippets are not handled here)", line)
			}
			if sites++; sites > 1 {
				return "", facts, fmt.Errorf("more than one site: extend the test to run it")
			}
			tok = []string{exSite, "{"}
		case tok[0] == "reverse_proxy" || tok[0] == "forward_auth":
			addr := appAddr
			if tok[0] == "forward_auth" {
				addr, facts.auth = authAddr, true
			} else {
				facts.upstream = true
			}
			for i := 1; i < len(tok); i++ {
				if tok[i] != "{" && !strings.HasPrefix(tok[i], "@") && !strings.HasPrefix(tok[i], "/") && tok[i] != "*" {
					tok[i] = addr
				}
			}
		case tok[0] == "basic_auth":
			facts.auth = true
		case top(1) == "basic_auth" && len(tok) == 2:
			tok[1] = hash
		case top(1) == "oss_upload" && (tok[0] == "endpoint" || tok[0] == "upload_url"):
			continue // replaced by the emulator's
		case top(1) == "oss_upload" && tok[0] == "bucket" && len(tok) == 2:
			emit(tok...)
			emit("upload_url", emu.BucketURL(expandEnv(tok[1], env)))
			continue
		case top(1) == "sts" && top(2) == "oss_upload" && tok[0] == "endpoint":
			continue
		case top(1) == "callback" && top(2) == "oss_upload" && tok[0] == "trusted_key":
			continue
		case top(1) == "callback" && top(2) == "oss_upload" && tok[0] == "url" && len(tok) == 2:
			_, rest, ok := strings.Cut(tok[1], "://")
			_, path, ok2 := strings.Cut(rest, "/")
			if !ok || !ok2 {
				return "", facts, fmt.Errorf("callback url %q: no path", tok[1])
			}
			tok[1] = exSite + "/" + path
		}
		emit(tok...)
		if opens {
			stack = append(stack, tok[0])
			switch {
			case tok[0] == "oss_upload" && len(stack) >= 2:
				emit("\tendpoint", emu.Endpoint())
			case tok[0] == "sts" && top(2) == "oss_upload":
				emit("\tendpoint", emu.STSEndpoint())
			case tok[0] == "callback" && top(2) == "oss_upload":
				emit("\ttrusted_key", keyFile)
			}
		}
	}
	if len(stack) != 0 {
		return "", facts, fmt.Errorf("unbalanced {")
	}
	return out.String(), facts, nil
}

// ossUploadHandlers are the oss_upload handlers of an adapted config.
func ossUploadHandlers(t *testing.T, cfg []byte) []Handler {
	t.Helper()
	var doc any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	var hs []Handler
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "oss_upload" {
				fields := map[string]any{}
				for k, x := range v {
					if k != "handler" {
						fields[k] = x
					}
				}
				b, _ := json.Marshal(fields)
				var h Handler
				if err := json.Unmarshal(b, &h); err != nil {
					t.Fatalf("oss_upload JSON: %v", err)
				}
				hs = append(hs, h)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return hs
}
