package caddyossplugin

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// What `xcaddy build --with github.com/caddy-oss/caddy-oss` links: the
// handler, and neither the emulator nor the sandbox's demo app.
func TestModuleRootLinksOnlyTheHandler(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/caddy-oss/caddy-oss/caddyoss") {
		t.Fatalf("the module root does not link the handler: %q", deps)
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "github.com/caddy-oss/caddy-oss/sandbox") || strings.HasPrefix(dep, "github.com/caddy-oss/caddy-oss/ossemu") {
			t.Errorf("the module root links %s", dep)
		}
	}
}
