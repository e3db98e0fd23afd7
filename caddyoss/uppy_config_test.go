package caddyoss

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestUppyPathConfig: uppy_path in the Caddyfile and at provision, and
// which requests the routes take.
func TestUppyPathConfig(t *testing.T) {
	for _, tc := range []struct {
		block, wantErr string
	}{
		{"uppy_path /up", ""},
		{"uppy_path off", ""},
		{"uppy_path up", "must start with '/'"},
		{"uppy_path", "missing value"},
		{"uppy_path /a /b", "unexpected argument"},
		{"uppy_path /up\npresign_path /up/s3/params", "below uppy_path"},
	} {
		t.Run(tc.block, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\n" + tc.block + "\n}"))
			if err == nil {
				h.Bucket, h.Region, h.AccessKeyID, h.AccessKeySecret = "example-bucket", "cn-hangzhou", "id", "secret"
				h.PresignPath = routePath(h.PresignPath, defaultPresignPath, true)
				err = h.Validate()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}

	for _, tc := range []struct {
		uppyPath, path string
		ours           bool
	}{
		{"", "/oss/uppy/s3/params", true},
		{"", "/oss/uppy/s3/multipart/x/1", true},
		{"", "/oss/uppy/s3", false},
		{"", "/oss/uppy", false},
		{"", "/oss/uppy/s3x/params", false},
		{"", "/oss/uppy2/s3/params", false},
		{"/up/", "/up/s3/params", true},
		{"/up", "/up/s3/params", true},
		{"off", "/oss/uppy/s3/params", false},
		{"no policy route", "/oss/uppy/s3/params", false},
		{"/up, no policy route", "/up/s3/params", true},
	} {
		h := testHandler(t, func(h *Handler) {
			h.UppyPath = tc.uppyPath
			if p, ok := strings.CutSuffix(tc.uppyPath, ", no policy route"); ok || tc.uppyPath == "no policy route" {
				h.UppyPath, h.PolicyPath = p, routeOff
				if !ok {
					h.UppyPath = ""
				}
			}
		})
		nextRan := false
		next := handlerFunc(func(http.ResponseWriter, *http.Request) error { nextRan = true; return nil })
		req := withReplacer(httptest.NewRequest("POST", tc.path, nil))
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, req, next); err != nil {
			t.Fatal(err)
		}
		if nextRan == tc.ours {
			t.Errorf("uppy_path %q, %s: next ran %v", tc.uppyPath, tc.path, nextRan)
		}
		if tc.ours && rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
			t.Errorf("uppy_path %q, POST %s: %d %s", tc.uppyPath, tc.path, rec.Code, rec.Body)
		}
	}
}
