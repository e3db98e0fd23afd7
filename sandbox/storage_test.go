package sandbox

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// homeDirs points Caddy's and the user's directories (the data directory
// holds Caddy's default storage) at temporary ones, and returns them.
func homeDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, env := range []string{"XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HOME"} {
		dir := t.TempDir()
		t.Setenv(env, dir)
		dirs = append(dirs, dir)
	}
	return dirs
}

// files lists what is below dir, as paths relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// uploadWithCallback makes one presigned PUT through the running sandbox
// and checks that the demo app's answer to the verified callback came
// back.
func uploadWithCallback(t *testing.T, sb *sandbox) {
	t.Helper()
	code, _, body := get(t, sb.siteURL+"/oss/presign?filename=note.txt&type=text/plain&size=5")
	var p struct {
		URL, Method string
		Headers     map[string]string
	}
	if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
		t.Fatalf("presign: %d %s", code, body)
	}
	h := http.Header{}
	for k, v := range p.Headers {
		h.Set(k, v)
	}
	if code, _, answer := do(t, p.Method, p.URL, h, bytes.NewReader([]byte("hello"))); code != 200 || !strings.Contains(string(answer), `"ok":true`) {
		t.Fatalf("PUT: %d %s", code, answer)
	}
}

func sandboxOptions(t *testing.T) options {
	return options{Listen: freeAddr(t), MaxSize: "1MB", AllowTypes: defaultTypes, Expires: "15m",
		SignatureVersion: "v4", AccessKeyID: "ak", AccessKeySecret: "sk"}
}

// The sandbox keeps Caddy's storage (the binding key, the callback
// records) in a directory of its own, removed when it stops: after a
// callback round trip nothing is written below the user's data, config,
// cache or home directories.
func TestSandboxStorageIsItsOwn(t *testing.T) {
	homes := homeDirs(t)
	sb, err := start(sandboxOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if !strings.Contains(sb.caddyfile, "storage file_system "+sb.storage+"\n") || !strings.HasPrefix(sb.storage, sb.tempDir) {
		t.Errorf("storage %q, Caddyfile:\n%s", sb.storage, sb.caddyfile)
	}
	uploadWithCallback(t, sb)
	if len(files(t, sb.storage)) == 0 {
		t.Errorf("nothing in the sandbox's storage %s after a callback", sb.storage)
	}
	for _, dir := range homes {
		if got := files(t, dir); len(got) != 0 {
			t.Errorf("the sandbox wrote below %s: %v", dir, got)
		}
	}
	sb.Close()
	if _, err := os.Stat(sb.storage); !os.IsNotExist(err) {
		t.Errorf("storage %s after Close: %v", sb.storage, err)
	}
	for _, dir := range homes {
		if got := files(t, dir); len(got) != 0 {
			t.Errorf("the sandbox wrote below %s: %v", dir, got)
		}
	}
}

// --storage-dir names the storage, which is kept after the sandbox stops;
// the printed Caddyfile names it too. Caddy's own data directory is
// refused.
func TestSandboxStorageDirFlag(t *testing.T) {
	homes := homeDirs(t)
	dir := filepath.Join(t.TempDir(), "sandbox storage")

	code, out, err := runCommand(t, "--print-config", "--listen", freeAddr(t), "--storage-dir", dir)
	if code != 0 || err != nil {
		t.Fatalf("exit %d: %v", code, err)
	}
	if !strings.Contains(out, `storage file_system "`+dir+`"`+"\n") {
		t.Errorf("printed Caddyfile does not name %s:\n%s", dir, out)
	}
	adapted, _ := adapt(t, out)
	if want := `"storage":{"module":"file_system","root":"` + dir + `"}`; !strings.Contains(adapted, want) {
		t.Errorf("adapted config lacks %s:\n%s", want, adapted)
	}

	// Caddy's own data directory is refused.
	code, _, err = runCommand(t, "--print-config", "--listen", freeAddr(t), "--storage-dir", filepath.Join(homes[0], "caddy"))
	if code == 0 || err == nil || !strings.Contains(err.Error(), "Caddy's own data directory") {
		t.Errorf("--storage-dir of Caddy's data directory: exit %d, %v", code, err)
	}

	opts := sandboxOptions(t)
	opts.StorageDir = dir
	sb, err := start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	uploadWithCallback(t, sb)
	sb.Close()
	got := files(t, dir)
	var oss bool
	for _, f := range got {
		oss = oss || strings.HasPrefix(f, "oss_upload"+string(filepath.Separator))
	}
	if !oss {
		t.Errorf("--storage-dir %s after a callback holds %v, want oss_upload's records", dir, got)
	}
	for _, home := range homes {
		if got := files(t, home); len(got) != 0 {
			t.Errorf("the sandbox wrote below %s: %v", home, got)
		}
	}
}
