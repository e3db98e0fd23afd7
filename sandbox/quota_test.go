package sandbox

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// --quota-* put a quota block for each sandbox user in the Caddyfile,
// which adapts; without them there is none; a value that is not one line
// of arguments is refused before anything starts.
func TestSandboxQuotaFlags(t *testing.T) {
	code, out, err := runCommand(t, "--print-config", "--listen", freeAddr(t), "--max-size", "1MB",
		"--quota-bytes", "4MB per 10m", "--quota-uploads", "3 per 10m", "--quota-pending", "2")
	if code != 0 || err != nil {
		t.Fatalf("exit %d: %v", code, err)
	}
	adapted, _ := adapt(t, out)
	if want := `"quota":{"bytes":4000000,"pending":2,"uploads":3,"window":600000000000}`; !strings.Contains(adapted, want) {
		t.Errorf("adapted config lacks %s:\n%s", want, adapted)
	}
	code, out, err = runCommand(t, "--print-config", "--listen", freeAddr(t))
	if code != 0 || err != nil || strings.Contains(out, "quota {") {
		t.Errorf("without --quota-*: exit %d, %v:\n%s", code, err, out)
	}
	for _, bad := range []string{"3 per 10m\n}\nevil", "3 {", "3 # per 10m"} {
		if code, _, err := runCommand(t, "--print-config", "--listen", freeAddr(t), "--quota-uploads", bad); code == 0 || err == nil || !strings.Contains(err.Error(), "--quota-uploads") {
			t.Errorf("--quota-uploads %q: exit %d, %v", bad, code, err)
		}
	}
	if c := caddycmd.Commands()["oss-sandbox"]; !strings.Contains(c.Usage, "[--quota-uploads <n per window>]") {
		t.Errorf("oss-sandbox's usage does not name --quota-uploads: %s", c.Usage)
	}
}

// A running sandbox with a quota grants each user their uploads, then
// answers 429 with Retry-After and the quota's JSON; another user has
// their own.
func TestSandboxQuota(t *testing.T) {
	homeDirs(t)
	opts := sandboxOptions(t)
	opts.QuotaUploads = "2 per 10m"
	sb, err := start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	sign := func(user string) (int, http.Header, string) {
		code, h, body := do(t, http.MethodGet, sb.siteURL+"/oss/post-policy?filename=a.txt&type=text/plain&size=5",
			http.Header{"Cookie": {"sandbox_user=" + user}}, nil)
		return code, h, string(body)
	}
	for i := range 2 {
		if code, h, body := sign("alice"); code != 200 || h.Get("X-Quota-Remaining-Uploads") != strconv.Itoa(1-i) {
			t.Fatalf("signing %d: %d, remaining %q: %s", i, code, h.Get("X-Quota-Remaining-Uploads"), body)
		}
	}
	code, h, body := sign("alice")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, `"reason":"uploads"`) {
		t.Errorf("third signing: %d, Retry-After %q: %s", code, h.Get("Retry-After"), body)
	}
	if code, _, body := sign("bob"); code != 200 {
		t.Errorf("another user: %d %s", code, body)
	}
}
