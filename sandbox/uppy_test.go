package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// writeUppyDist makes an Uppy dist folder under root/rel holding the given
// files, with the npm package's package.json beside it.
func writeUppyDist(t *testing.T, root, rel string, files ...string) string {
	t.Helper()
	dir := filepath.Join(root, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("/* "+f+" */"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pkg := `{"name":"uppy","version":"9.8.7"}`
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "package.json"), []byte(pkg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// findUppy takes the flag's folder, else a local npm copy (the current
// directory's node_modules before e2e/'s), else the CDN; a flag naming
// something that is not a dist folder is an error that says what to give.
func TestFindUppy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, root string) (flag string)
		source  string
		shown   string
		version string
		err     string
	}{
		{name: "flag", source: fromFlag, shown: "mine/dist", version: "9.8.7", setup: func(t *testing.T, root string) string {
			writeUppyDist(t, root, "node_modules/uppy/dist", uppyModule, uppyCSS) // the flag wins over it
			writeUppyDist(t, root, "mine/dist", uppyModule, uppyCSS)
			return "mine/dist"
		}},
		{name: "flag without the stylesheet", err: "--uppy-dist: mine/dist has no uppy.min.css", setup: func(t *testing.T, root string) string {
			writeUppyDist(t, root, "mine/dist", uppyModule)
			return "mine/dist"
		}},
		{name: "flag naming a file", err: "is not a folder", setup: func(t *testing.T, root string) string {
			writeUppyDist(t, root, "mine/dist", uppyModule, uppyCSS)
			return "mine/dist/" + uppyModule
		}},
		{name: "flag naming nothing", err: "--uppy-dist: stat nowhere", setup: func(t *testing.T, root string) string {
			return "nowhere"
		}},
		{name: "own node_modules", source: fromLocal, shown: "node_modules/uppy/dist", version: "9.8.7", setup: func(t *testing.T, root string) string {
			writeUppyDist(t, root, "node_modules/uppy/dist", uppyModule, uppyCSS)
			writeUppyDist(t, root, "e2e/node_modules/uppy/dist", uppyModule, uppyCSS)
			return ""
		}},
		{name: "checkout's e2e", source: fromLocal, shown: "e2e/node_modules/uppy/dist", version: "9.8.7", setup: func(t *testing.T, root string) string {
			writeUppyDist(t, root, "node_modules/uppy/dist", uppyModule) // incomplete: skipped
			writeUppyDist(t, root, "e2e/node_modules/uppy/dist", uppyModule, uppyCSS)
			return ""
		}},
		{name: "no local copy", source: fromCDN, version: uppyVersion, setup: func(t *testing.T, root string) string {
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			t.Chdir(root)
			flag := tc.setup(t, root)
			b, err := findUppy(flag)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Source != tc.source || b.Shown != tc.shown || b.Version != tc.version {
				t.Errorf("bundle %+v, want source %s shown %q version %s", b, tc.source, tc.shown, tc.version)
			}
			if tc.source == fromCDN {
				if b.Dir != "" || b.moduleSrc() != uppyCDN+uppyModule || b.cssHref() != uppyCDN+uppyCSS ||
					!strings.Contains(b.describe(), "--uppy-dist") {
					t.Errorf("CDN bundle %+v: %s %s %s", b, b.moduleSrc(), b.cssHref(), b.describe())
				}
				return
			}
			if want := filepath.Join(root, tc.shown); b.Dir != want {
				t.Errorf("dir %s, want %s", b.Dir, want)
			}
			if b.moduleSrc() != "/uppy/"+uppyModule || b.cssHref() != "/uppy/"+uppyCSS ||
				!strings.Contains(b.describe(), tc.shown+" (uppy 9.8.7)") {
				t.Errorf("local bundle: %s %s %s", b.moduleSrc(), b.cssHref(), b.describe())
			}
		})
	}
}

// The CDN fallback names the release the e2e tests pin, so the page loads
// the same Uppy with or without a local copy.
func TestUppyCDNVersionIsPinned(t *testing.T) {
	b, err := os.ReadFile("../e2e/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	if got := pkg.Dependencies["uppy"]; got != uppyVersion {
		t.Errorf("e2e/package.json pins uppy %q, the CDN fallback is %s", got, uppyVersion)
	}
}

// The page loads the bundle it was given and the Uppy tab's script; the
// demo app serves the local bundle's module and stylesheet and nothing
// else from its folder.
func TestSandboxServesUppy(t *testing.T) {
	emu, err := ossemu.New(ossemu.Options{Buckets: []string{bucketName}})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dist := writeUppyDist(t, root, "uppy/dist", uppyModule, uppyCSS, uppyModule+".map")
	if err := os.WriteFile(filepath.Join(dist, "secret.txt"), []byte("not served"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bundle      uppyBundle
		module, css string
		banner      string
		served      bool
	}{
		{uppyBundle{Source: fromCDN, Version: uppyVersion}, uppyCDN + uppyModule, uppyCDN + uppyCSS,
			"Uppy " + uppyVersion + " comes from Transloadit's public CDN", false},
		{uppyBundle{Source: fromLocal, Dir: dist, Shown: "e2e/node_modules/uppy/dist", Version: "9.8.7"}, "/uppy/" + uppyModule, "/uppy/" + uppyCSS,
			"Uppy 9.8.7 is the local npm copy <code>e2e/node_modules/uppy/dist</code>", true},
		{uppyBundle{Source: fromFlag, Dir: dist, Shown: "my/dist"}, "/uppy/" + uppyModule, "/uppy/" + uppyCSS,
			"Uppy is the bundle given with <code>--uppy-dist</code>: <code>my/dist</code>", true},
	} {
		app, err := startDemoApp(aliOSSBundle{Source: fromCDN}, tc.bundle, emu, "")
		if err != nil {
			t.Fatal(err)
		}
		code, _, page := get(t, app.URL+"/")
		for _, want := range []string{
			`<link rel="stylesheet" href="` + tc.css + `">`,
			`<script type="module" id="uppy-tab" src="/uppy-tab.js" data-bundle="` + tc.module + `" data-endpoint="` + uppyPath + `"></script>`,
			`id="uppy-source" data-source="` + tc.bundle.Source + `"`, tc.banner, `id="tab-uppy"`, `id="uppy-dashboard"`,
		} {
			if code != 200 || !strings.Contains(page, want) {
				t.Errorf("page with the %s bundle lacks %s (%d)", tc.bundle.Source, want, code)
			}
		}
		for name, ctype := range map[string]string{uppyModule: "text/javascript", uppyCSS: "text/css", uppyModule + ".map": "application/json"} {
			code, h, body := get(t, app.URL+"/uppy/"+name)
			switch {
			case tc.served && (code != 200 || body != "/* "+name+" */" || !strings.HasPrefix(h.Get("Content-Type"), ctype)):
				t.Errorf("%s with the %s bundle: %d %q %q", name, tc.bundle.Source, code, h.Get("Content-Type"), body)
			case !tc.served && code != 404:
				t.Errorf("%s with the CDN bundle: %d, want 404", name, code)
			}
		}
		for _, path := range []string{"/uppy/secret.txt", "/uppy/package.json", "/uppy/..%2Fpackage.json", "/uppy/", "/uppy/dist%2F" + uppyModule} {
			if code, _, body := get(t, app.URL+path); code != 404 || strings.Contains(body, "not served") || strings.Contains(body, "9.8.7") {
				t.Errorf("%s with the %s bundle: %d %q, want 404", path, tc.bundle.Source, code, body)
			}
		}
		if code, h, body := get(t, app.URL+"/uppy-tab.js"); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") ||
			!strings.Contains(body, "companionEndpoint: endpoint") || !strings.Contains(body, "shouldUseMultipart") {
			t.Errorf("uppy-tab.js: %d %q", code, h.Get("Content-Type"))
		}
		app.Close()
	}
}

// The running sandbox puts each user's uploads below uploads/<user>/, the
// user being the sandbox_user cookie when it is a plain name and guest
// otherwise, on every signing route, the Uppy routes included; and one
// user's multipart upload is refused to another.
func TestSandboxUserPrefix(t *testing.T) {
	sb, err := start(options{Listen: freeAddr(t), MaxSize: "1MB", AllowTypes: defaultTypes, Expires: "15m",
		SignatureVersion: "v4", AccessKeyID: "ak", AccessKeySecret: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	asUser := func(method, path, cookie, body string) (int, string) {
		t.Helper()
		h := http.Header{}
		if cookie != "" {
			h.Set("Cookie", cookie)
		}
		if body != "" {
			h.Set("Content-Type", "application/json")
		}
		code, _, b := do(t, method, sb.siteURL+path, h, strings.NewReader(body))
		return code, string(b)
	}
	for _, tc := range []struct {
		cookie, prefix string
	}{
		{"", "uploads/guest/"},
		{"sandbox_user=alice", "uploads/alice/"},
		{"theme=dark; sandbox_user=Bob_2-x", "uploads/Bob_2-x/"},
		{"sandbox_user=" + strings.Repeat("a", 32), "uploads/" + strings.Repeat("a", 32) + "/"},
		{"sandbox_user=" + strings.Repeat("a", 33), "uploads/guest/"},
		{"sandbox_user=..%2Fevil", "uploads/guest/"},
		{"sandbox_user=a*b", "uploads/guest/"},
		{"sandbox_user=", "uploads/guest/"},
	} {
		q := url.Values{"filename": {"a.png"}, "type": {"image/png"}, "size": {"10"}}.Encode()
		for _, path := range []string{"/oss/post-policy?" + q, "/oss/presign?" + q, uppyPath + "/s3/params?" + q} {
			code, body := asUser(http.MethodGet, path, tc.cookie, "")
			var got struct {
				Key    string
				Fields struct{ Key string }
			}
			if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
				t.Fatalf("%s with %q: %d %s", path, tc.cookie, code, body)
			}
			key := got.Key
			if key == "" {
				key = got.Fields.Key
			}
			if !strings.HasPrefix(key, tc.prefix) || strings.Count(key, "/") != 2 {
				t.Errorf("%s with %q: key %q, want one below %s", path, tc.cookie, key, tc.prefix)
			}
		}
	}

	code, body := asUser(http.MethodPost, uppyPath+"/s3/multipart", "sandbox_user=alice", `{"filename":"v.mp4","type":"video/mp4"}`)
	var up struct{ Key, UploadID string }
	if err := json.Unmarshal([]byte(body), &up); code != 200 || err != nil || !strings.HasPrefix(up.Key, "uploads/alice/") {
		t.Fatalf("create as alice: %d %s", code, body)
	}
	list := uppyPath + "/s3/multipart/" + url.PathEscape(up.UploadID) + "?" + url.Values{"key": {up.Key}}.Encode()
	for cookie, want := range map[string]int{"sandbox_user=alice": 200, "sandbox_user=bob": 403, "": 403} {
		if code, body := asUser(http.MethodGet, list, cookie, ""); code != want {
			t.Errorf("listing alice's parts with %q: %d %s, want %d", cookie, code, body, want)
		}
	}
}
