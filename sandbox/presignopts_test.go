package sandbox

import (
	"strings"
	"testing"
)

// --presign-format and --default-type reach oss_upload's presign_format and
// default_type; unset, the Caddyfile leaves them to the plugin's defaults.
func TestSandboxCaddyfilePresignOptions(t *testing.T) {
	base := options{MaxSize: "1MB", AllowTypes: "image/* text/plain", Expires: "15m",
		SignatureVersion: "v4", AccessKeyID: "ak", AccessKeySecret: "sk"}
	tests := []struct {
		name                string
		format, defaultType string
		want, absent        []string
	}{
		{"defaults", "", "", nil, []string{`"presign_format"`, `"default_type"`}},
		{"url", "url", "", []string{`"presign_format":"url"`}, []string{`"default_type"`}},
		{"default type", "", "image/png", []string{`"default_type":"image/png"`}, []string{`"presign_format"`}},
		{"both, with parameters", "json", "text/plain; charset=utf-8",
			[]string{`"presign_format":"json"`, `"default_type":"text/plain; charset=utf-8"`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := base
			opts.PresignFormat, opts.DefaultType = tc.format, tc.defaultType
			out, _ := adapt(t, caddyfile(caddyfileParams{
				Bind: "127.0.0.1", Port: "8080", KeyFile: "/tmp/key.pem", Storage: "/tmp/sandbox-storage", AppAddr: "127.0.0.1:1", Region: "cn-hangzhou",
				Endpoint: "http://127.0.0.1:1", STSEndpoint: "http://127.0.0.1:1", UploadURL: "http://sandbox.127.0.0.1:1", Opts: opts,
			}))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("adapted config lacks %s:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("adapted config has %s:\n%s", a, out)
				}
			}
		})
	}
}
