package caddyoss

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// The plugin links nothing of the emulator or the sandbox: they are for
// tests and local use, and every Caddy built with oss_upload links what
// this package imports. (Its tests may use the emulator; `go list -deps`
// without -test lists what the package itself needs.)
func TestPluginHasNoSandboxDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/caddy-oss/caddy-oss/caddyoss" {
		t.Fatalf("go list -deps did not end with this package: %q", deps)
	}
	for _, dep := range deps {
		switch dep {
		case "github.com/caddy-oss/caddy-oss/ossemu", "github.com/caddy-oss/caddy-oss/sandbox":
			t.Errorf("package caddyoss depends on %s", dep)
		}
	}
}
