package caddyoss

// Finding the Caddyfile blocks the project ships, and the environment
// their placeholders expand from.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// exampleEnv is the environment every example runs with: {$X} and
// {env.X} placeholders expand from it. A placeholder naming anything else
// fails the test, so an example with a new variable gets one here.
func exampleEnv(appAddr, authAddr string) map[string]string {
	return map[string]string{
		"SITE_ADDRESS":                    exSite,
		"OSS_BUCKET":                      "env-bucket",
		"OSS_REGION":                      "cn-hangzhou",
		"OSS_ACCESS_KEY_ID":               exAK,
		"OSS_ACCESS_KEY_SECRET":           exSecret,
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     exAK, // the default credential chain
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": exSecret,
		"OSS_ROLE_ARN":                    exRole,
		"AUTH_UPSTREAM":                   authAddr,
		"APP_UPSTREAM":                    appAddr,
	}
}

var exampleBuckets = []string{"env-bucket", "example-bucket", "examplebucket"}

type docBlock struct {
	file     string // relative to the repository root
	line     int    // of the opening fence (1 for Caddyfile.example)
	text     string
	fragment bool     // marked as one in its fence
	needs    []string // modules its fence names (needs=<module path>), see externalModules
	near     string   // the document's text around the block
}

func (b docBlock) name() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// docCaddyfiles are the Caddyfile blocks the project ships.
func docCaddyfiles(t *testing.T) []docBlock {
	t.Helper()
	files := []string{"README.md", "ossemu/README.md"}
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		files = append(files, strings.TrimPrefix(d, "../"))
	}
	var blocks []docBlock
	for _, f := range files {
		data, err := os.ReadFile("../" + f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			fence := strings.TrimSpace(lines[i])
			if !strings.HasPrefix(fence, "```") {
				continue
			}
			info := strings.Fields(strings.ToLower(strings.TrimPrefix(fence, "```")))
			start := i
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			}
			if i == len(lines) {
				t.Fatalf("%s:%d: unclosed fence", f, start+1)
			}
			if len(info) == 0 || info[0] != "caddyfile" {
				continue
			}
			var needs []string
			for _, w := range info[1:] {
				if m, ok := strings.CutPrefix(w, "needs="); ok {
					needs = append(needs, m)
				}
			}
			from, to := max(0, start-20), min(len(lines), i+10)
			blocks = append(blocks, docBlock{file: f, line: start + 1, fragment: slices.Contains(info[1:], "fragment"), needs: needs,
				text: strings.Join(lines[start+1:i], "\n") + "\n",
				near: strings.Join(lines[from:start], "\n") + "\n" + strings.Join(lines[i+1:to], "\n")})
		}
	}
	data, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	blocks = append(blocks, docBlock{file: "Caddyfile.example", line: 1, text: string(data), near: string(data)})
	return blocks
}

var exampleEnvRef = regexp.MustCompile(`\{(?:\$([A-Za-z0-9_]+)(?::[^}]*)?|env\.([A-Za-z0-9_]+))\}`)

// expandEnv expands {$X}, {$X:default} and {env.X} from env.
func expandEnv(s string, env map[string]string) string {
	return exampleEnvRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := exampleEnvRef.FindStringSubmatch(m)
		return env[sub[1]+sub[2]]
	})
}
