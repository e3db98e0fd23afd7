package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
)

// aliOSSCDN is ali-oss's browser bundle on Alibaba's public CDN, used when
// no local copy is found.
const aliOSSCDN = "https://gosspublic.alicdn.com/aliyun-oss-sdk-6.18.0.min.js"

// Where the page's ali-oss bundle comes from.
const (
	fromFlag  = "flag"  // --ali-oss-js
	fromLocal = "local" // the npm copy in node_modules
	fromCDN   = "cdn"   // Alibaba's public CDN
)

// localBundles are the npm copies looked for, relative to the current
// directory: a project's own node_modules, then the checkout's e2e/.
var localBundles = []string{
	"node_modules/ali-oss/dist/aliyun-oss-sdk.min.js",
	"e2e/node_modules/ali-oss/dist/aliyun-oss-sdk.min.js",
}

// aliOSSBundle is the ali-oss browser bundle the page loads.
type aliOSSBundle struct {
	Source string // fromFlag, fromLocal or fromCDN
	Path   string // absolute path of the file served at /ali-oss.js; empty for the CDN
	Shown  string // the path as the user would recognise it
}

// findAliOSSJS picks the bundle: the flag's file, else a local npm copy,
// else the public CDN.
func findAliOSSJS(flag string) (aliOSSBundle, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return aliOSSBundle{}, fmt.Errorf("--ali-oss-js: %w", err)
		}
		abs, err := filepath.Abs(flag)
		return aliOSSBundle{Source: fromFlag, Path: abs, Shown: flag}, err
	}
	for _, p := range localBundles {
		if _, err := os.Stat(p); err == nil {
			abs, err := filepath.Abs(p)
			return aliOSSBundle{Source: fromLocal, Path: abs, Shown: p}, err
		}
	}
	return aliOSSBundle{Source: fromCDN}, nil
}

// scriptSrc is the page's <script src> for the bundle.
func (b aliOSSBundle) scriptSrc() string {
	if b.Path == "" {
		return aliOSSCDN
	}
	return "/ali-oss.js"
}

// describe says where the bundle comes from, for the terminal.
func (b aliOSSBundle) describe() string {
	switch b.Source {
	case fromFlag:
		return "--ali-oss-js " + b.Shown
	case fromLocal:
		return "the local npm copy " + b.Shown
	default:
		return "Alibaba's public CDN, " + aliOSSCDN + " (for a local copy: cd e2e && npm ci in a checkout, or --ali-oss-js <file>)"
	}
}
