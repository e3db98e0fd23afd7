package sandbox

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// --form-fields reaches oss_upload's form_fields; minimal leaves allow_types
// out unless --allow-types is given (the plugin refuses the pair), and the
// printed Caddyfile adapts.
func TestSandboxFormFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		want   []string
		absent []string
	}{
		{"default", nil, []string{"allow_types image/*"}, []string{"form_fields"}},
		{"minimal", []string{"--form-fields", "minimal"}, []string{"form_fields minimal"}, []string{"allow_types"}},
		{"full", []string{"--form-fields", "full"}, []string{"form_fields full", "allow_types image/*"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--print-config", "--listen", freeAddr(t)}, tc.args...)
			code, out, err := runCommand(t, args...)
			if code != 0 || err != nil {
				t.Fatalf("exit %d: %v", code, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("Caddyfile lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("Caddyfile has %q:\n%s", a, out)
				}
			}
			adapt(t, out)
		})
	}
	// Asked for both, the plugin's own error says why not.
	code, out, err := runCommand(t, "--print-config", "--listen", freeAddr(t), "--form-fields", "minimal", "--allow-types", "image/*")
	if code != 0 || err != nil {
		t.Fatalf("exit %d: %v", code, err)
	}
	_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(out), nil)
	if err == nil || !strings.Contains(err.Error(), "form_fields minimal: allow_types (image/*) would need the form to send Content-Type") {
		t.Errorf("adapt: %v", err)
	}
}
