package sandbox

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// adapted is the part of an adapted sandbox config the tests read.
type adapted struct {
	Logging struct {
		Logs map[string]struct {
			Level   string
			Include []string
			Exclude []string
		}
	}
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string
				Routes []json.RawMessage
			}
		}
	}
}

func adapt(t *testing.T, cfg string) (string, adapted) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	var doc adapted
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	return string(out), doc
}

// The generated Caddyfile adapts, with every route on and the callback
// trusting the emulator's key. (The whole command runs in the browser
// tests, e2e/browser.)
func TestSandboxCaddyfileAdapts(t *testing.T) {
	emu, err := ossemu.Start(ossemu.Options{Buckets: []string{bucketName}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cfg := caddyfile(caddyfileParams{
		Bind: "127.0.0.1", Port: "8080", KeyFile: "/tmp/key.pem", Storage: "/tmp/sandbox-storage", AppAddr: "127.0.0.1:1",
		Region: emu.Region(), Endpoint: emu.Endpoint(), STSEndpoint: emu.STSEndpoint(), UploadURL: emu.BucketURL(bucketName),
		Opts: options{MaxSize: "1MB", AllowTypes: "image/*  text/plain", Expires: "15m",
			SignatureVersion: "v4", AccessKeyID: "ak", AccessKeySecret: "sk"},
	})
	out, doc := adapt(t, cfg)
	srv, ok := doc.Apps.HTTP.Servers["srv0"]
	if !ok || len(srv.Listen) != 1 || srv.Listen[0] != "127.0.0.1:8080" {
		t.Fatalf("servers %+v", doc.Apps.HTTP.Servers)
	}
	for _, want := range []string{`"handler":"oss_upload"`, `"role_arn":"` + roleARN + `"`, `"trusted_keys":["/tmp/key.pem"]`,
		`"upload_url":"` + emu.BucketURL(bucketName) + `"`, `"allow_types":["image/*","text/plain"]`, `"handler":"reverse_proxy"`,
		`"dial":"127.0.0.1:1"`, `"key_prefix":"uploads/{sandbox_user}/"`, `"handler":"map"`, `"source":"{http.request.cookie.sandbox_user}"`,
		`"destinations":["{sandbox_user}"]`, `"defaults":["guest"]`,
		`"storage":{"module":"file_system","root":"/tmp/sandbox-storage"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}
	if len(doc.Logging.Logs) != 0 {
		t.Errorf("logs without --debug: %+v", doc.Logging.Logs)
	}
}

// --print-config prints the Caddyfile the sandbox would run, which adapts,
// and exits 0 without starting the site; with --debug the config turns
// oss_upload's logger to DEBUG.
func TestSandboxPrintConfig(t *testing.T) {
	site := freeAddr(t)
	code, out, err := runCommand(t, "--print-config", "--listen", site, "--access-key-secret", "printed-secret", "--max-size", "2MB")
	if code != 0 || err != nil {
		t.Fatalf("exit %d: %v", code, err)
	}
	if !strings.HasPrefix(out, "# caddy oss-sandbox") || !strings.Contains(out, "oss_upload {") {
		t.Fatalf("printed:\n%s", out)
	}
	adaptedJSON, doc := adapt(t, out)
	_, port, _ := net.SplitHostPort(site)
	if srv := doc.Apps.HTTP.Servers["srv0"]; len(srv.Listen) != 1 || srv.Listen[0] != "127.0.0.1:"+port {
		t.Errorf("servers %+v", doc.Apps.HTTP.Servers)
	}
	for _, want := range []string{`"access_key_secret":"printed-secret"`, `"max_size":2000000`, `"access_key_id":"sandbox-ak"`,
		`"url":"http://127.0.0.1:` + port + `/oss/callback"`} {
		if !strings.Contains(adaptedJSON, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, adaptedJSON)
		}
	}
	if len(doc.Logging.Logs) != 0 {
		t.Errorf("logs without --debug: %+v", doc.Logging.Logs)
	}
	// Printing does not start the site.
	if ln, err := net.Listen("tcp", site); err != nil {
		t.Errorf("the site's port is taken after --print-config: %v", err)
	} else {
		ln.Close()
	}

	code, out, err = runCommand(t, "--print-config", "--debug", "--listen", site)
	if code != 0 || err != nil {
		t.Fatalf("--debug: exit %d: %v", code, err)
	}
	_, doc = adapt(t, out)
	l, ok := doc.Logging.Logs["oss_upload"]
	if !ok || l.Level != "DEBUG" || len(l.Include) != 1 || l.Include[0] != handlerLogger {
		t.Errorf("--debug logs: %+v\n%s", doc.Logging.Logs, out)
	}
	// Caddy's default log keeps its level and leaves oss_upload to its own log.
	if d := doc.Logging.Logs["default"]; d.Level != "" || len(d.Exclude) != 1 || d.Exclude[0] != handlerLogger {
		t.Errorf("--debug default log: %+v", d)
	}
}
