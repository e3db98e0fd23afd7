package caddyoss

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddyserver/caddy/v2"
)

// A server signing with STS credentials (an ECS RAM role, an OIDC role)
// gets V4 URLs of at most 12 h, which is all OSS accepts for them; with a
// key pair, or V1, or a shorter expires, the configured lifetime holds.
func TestURLLifetimeWithSTSCredentials(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sts     bool
		version string
		expires time.Duration
		want    string // x-oss-expires or, for V1, seconds to Expires
	}{
		{"sts, 7 days", true, osssign.V4, 7 * 24 * time.Hour, "43200"},
		{"sts, 12 hours and a second", true, osssign.V4, 12*time.Hour + time.Second, "43200"},
		{"sts, 12 hours", true, osssign.V4, 12 * time.Hour, "43200"},
		{"sts, 1 hour", true, osssign.V4, time.Hour, "3600"},
		{"key pair, 7 days", false, osssign.V4, 7 * 24 * time.Hour, "604800"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sts {
				t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.chainid")
				t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "chainsecret")
				t.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "CAIStoken==")
			}
			h := testHandler(t, func(h *Handler) {
				if tc.sts {
					h.AccessKeyID, h.AccessKeySecret = "", ""
				}
				h.SignatureVersion, h.Expires = tc.version, caddy.Duration(tc.expires)
			})
			var got struct {
				URL     string
				Expires any // a date from the presign route, seconds from Uppy's
			}
			get := func(target string) {
				t.Helper()
				rec := httptest.NewRecorder()
				if err := h.ServeHTTP(rec, withReplacer(httptest.NewRequest("GET", target, nil)), nextMustNotRun(t)); err != nil || rec.Code != 200 {
					t.Fatalf("%s: %d %v %s", target, rec.Code, err, rec.Body)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
			}
			get("/oss/presign?filename=a.png&type=image/png")
			u, _ := url.Parse(got.URL)
			if e := u.Query().Get("x-oss-expires"); e != tc.want {
				t.Errorf("presign x-oss-expires = %s, want %s", e, tc.want)
			}
			key := "a/b.bin"
			id, err := h.uppy.sealUploadID(context.Background(), key, "0004B9894A22E5B1888A1E29F8236E2D")
			if err != nil {
				t.Fatal(err)
			}
			get("/oss/uppy/s3/multipart/" + id + "/1?key=" + url.QueryEscape(key))
			u, _ = url.Parse(got.URL)
			if e := u.Query().Get("x-oss-expires"); e != tc.want || got.Expires != mustFloat(tc.want) {
				t.Errorf("part URL x-oss-expires = %s, expires %v, want %s", e, got.Expires, tc.want)
			}
		})
	}
}

func mustFloat(s string) float64 {
	var f float64
	_ = json.Unmarshal([]byte(s), &f)
	return f
}
