package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// defaultCallbackURL is where the printed block has the emulator post
// callbacks unless -callback-url says otherwise: a site on
// http://127.0.0.1:8080 with oss_upload's default callback path.
const defaultCallbackURL = "http://127.0.0.1:8080/oss/callback"

// callbackKeyFile is the name of the callback public key's file.
const callbackKeyFile = "ossemu-callback-key.pem"

// snippetParams are what the printed oss_upload block is made of.
type snippetParams struct {
	Addr                         string // host:port the emulator serves on
	Bucket, Region               string
	Endpoint, UploadURL          string
	STSEndpoint                  string
	AccessKeyID, AccessKeySecret string
	RoleARN                      string // "": no sts block
	CallbackURL                  string
	KeyFile                      string // the emulator's callback public key, PEM
}

// The block is written as a user would write it in a site, so it can be
// pasted there or imported (`import <file>`).
var snippetTemplate = template.Must(template.New("oss_upload").Funcs(template.FuncMap{"tok": token}).Parse(`# oss_upload against ossemu at {{.Addr}} (bucket {{.Bucket}}): put this block in
# a site of your Caddyfile, or "import <file>" it there with -caddyfile <file>.
# Each ossemu run has a new callback key: after restarting ossemu, reload Caddy.
oss_upload {
	bucket {{tok .Bucket}}
	region {{tok .Region}}
	endpoint {{tok .Endpoint}}
	upload_url {{tok .UploadURL}}
	access_key_id {{tok .AccessKeyID}}
	access_key_secret {{tok .AccessKeySecret}}
{{- if .RoleARN}}
	sts {
		endpoint {{tok .STSEndpoint}}
		role_arn {{tok .RoleARN}}
	}
{{- end}}
	callback {
		# your site's callback route, which ossemu posts to (-callback-url)
		url {{tok .CallbackURL}}
		# the key ossemu signs callbacks with, written for this run
		trusted_key {{tok .KeyFile}}
	}
}
`))

// caddyfileSnippet is the oss_upload block for the emulator.
func caddyfileSnippet(p snippetParams) (string, error) {
	for _, v := range []string{p.Bucket, p.AccessKeyID, p.AccessKeySecret, p.RoleARN, p.CallbackURL, p.KeyFile} {
		if strings.ContainsAny(v, "\"\n\r") {
			return "", fmt.Errorf("%q cannot be written into a Caddyfile (a quote or a line break)", v)
		}
	}
	var b strings.Builder
	if err := snippetTemplate.Execute(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// token writes a value as one Caddyfile token: as it is when nothing in it
// is special to the Caddyfile, else in double quotes.
func token(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t{}#\"`\\") {
		return v
	}
	return `"` + v + `"`
}

// writeCallbackKey writes the callback public key to dir (made if missing,
// kept), or to a new temporary directory that cleanup removes. It returns
// the file's absolute path.
func writeCallbackKey(pem []byte, dir string) (path string, cleanup func(), err error) {
	cleanup = func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ossemu-"); err != nil {
			return "", nil, err
		}
		tmp := dir
		cleanup = func() { _ = os.RemoveAll(tmp) }
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("-state-dir: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		cleanup()
		return "", nil, err
	}
	path = filepath.Join(dir, callbackKeyFile)
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}
