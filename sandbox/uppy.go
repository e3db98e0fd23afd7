package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// uppyVersion is the release of Uppy's prebuilt bundle (the npm package
// "uppy", pinned in e2e/package.json) the page loads from the public CDN
// when no local copy is found.
const uppyVersion = "6.0.1"

// uppyCDN is that release's folder on Transloadit's public CDN.
const uppyCDN = "https://releases.transloadit.com/uppy/v" + uppyVersion + "/"

// uppyPath is where oss_upload answers Uppy Companion's S3 routes (its
// uppy_path, whose default this is); the page's @uppy/aws-s3 uses it as its
// companionEndpoint.
const uppyPath = "/oss/uppy"

// The bundle's files the page needs, served by the demo app at
// /uppy/<name> when the bundle is local.
const (
	uppyModule = "uppy.min.mjs" // Uppy, Dashboard, AwsS3, … as ES module exports
	uppyCSS    = "uppy.min.css"
)

// uppyServed are the only names served below /uppy/: the module, its
// stylesheet and the module's source map.
var uppyServed = map[string]string{
	uppyModule:          "text/javascript; charset=utf-8",
	uppyCSS:             "text/css; charset=utf-8",
	uppyModule + ".map": "application/json",
}

// localUppyDists are the npm copies of the bundle's dist folder looked for,
// relative to the current directory: a project's own node_modules, then
// the checkout's e2e/.
var localUppyDists = []string{
	"node_modules/uppy/dist",
	"e2e/node_modules/uppy/dist",
}

// uppyBundle is the Uppy bundle the page loads.
type uppyBundle struct {
	Source  string // fromFlag, fromLocal or fromCDN
	Dir     string // absolute path of the dist folder served at /uppy/; empty for the CDN
	Shown   string // the folder as the user would recognise it
	Version string // the release, from the package.json beside dist when there is one
}

// findUppy picks the bundle: the flag's dist folder, else a local npm
// copy, else the public CDN. A folder given with the flag must hold the
// module and the stylesheet.
func findUppy(flag string) (uppyBundle, error) {
	if flag != "" {
		if err := uppyDistOK(flag); err != nil {
			return uppyBundle{}, fmt.Errorf("--uppy-dist: %w", err)
		}
		abs, err := filepath.Abs(flag)
		if err != nil {
			return uppyBundle{}, fmt.Errorf("--uppy-dist: %w", err)
		}
		return uppyBundle{Source: fromFlag, Dir: abs, Shown: flag, Version: uppyPackageVersion(abs)}, nil
	}
	for _, p := range localUppyDists {
		if uppyDistOK(p) != nil {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return uppyBundle{}, err
		}
		return uppyBundle{Source: fromLocal, Dir: abs, Shown: p, Version: uppyPackageVersion(abs)}, nil
	}
	return uppyBundle{Source: fromCDN, Version: uppyVersion}, nil
}

// uppyDistOK checks that dir holds the bundle's module and stylesheet.
func uppyDistOK(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder (give Uppy's dist folder, e.g. node_modules/uppy/dist)", dir)
	}
	for _, name := range []string{uppyModule, uppyCSS} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s has no %s (give Uppy's dist folder, e.g. node_modules/uppy/dist)", dir, name)
		}
	}
	return nil
}

// uppyPackageVersion reads the version of the npm package whose dist
// folder is dir; empty when there is no readable package.json.
func uppyPackageVersion(dir string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct {
		Name, Version string
	}
	if json.Unmarshal(b, &pkg) != nil || pkg.Name != "uppy" {
		return ""
	}
	return pkg.Version
}

// moduleSrc is the URL the page imports Uppy from.
func (b uppyBundle) moduleSrc() string {
	if b.Dir == "" {
		return uppyCDN + uppyModule
	}
	return "/uppy/" + uppyModule
}

// cssHref is the URL of Uppy's stylesheet.
func (b uppyBundle) cssHref() string {
	if b.Dir == "" {
		return uppyCDN + uppyCSS
	}
	return "/uppy/" + uppyCSS
}

// describe says where the bundle comes from, for the terminal.
func (b uppyBundle) describe() string {
	version := ""
	if b.Version != "" {
		version = " (uppy " + b.Version + ")"
	}
	switch b.Source {
	case fromFlag:
		return "--uppy-dist " + b.Shown + version
	case fromLocal:
		return "the local npm copy " + b.Shown + version
	default:
		return "Transloadit's public CDN, " + uppyCDN + " (for a local copy: cd e2e && npm ci in a checkout, or --uppy-dist <dir>)"
	}
}

// serveUppy serves the local bundle's files at /uppy/{name}; nothing when
// the page loads Uppy from the CDN.
func (a *demoApp) serveUppy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctype, ok := uppyServed[name]
	if !ok || a.uppy.Dir == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	http.ServeFile(w, r, filepath.Join(a.uppy.Dir, name))
}
