package caddyoss

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/refsign"
)

// presignResponse is the JSON the presign route returns.
type presignResponse struct {
	URL, Method, Key, Expires string
	Headers                   map[string]string
}

func getPresign(t *testing.T, h *Handler, target string) presignResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, withReplacer(httptest.NewRequest("GET", target, nil)), nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp presignResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// The presigned URLs verify with the reference signer (itself checked
// against the published vectors B1–B6 and C6–C10).
func TestPresignRouteSignatures(t *testing.T) {
	for _, version := range []string{osssign.V4, osssign.V1} {
		t.Run(version, func(t *testing.T) {
			h := testHandler(t, func(h *Handler) {
				h.SignatureVersion = version
				h.KeyPrefix = "in/"
				h.Callback = &CallbackConfig{URL: "https://app.example.com/cb", Vars: map[string]string{"user": "{http.request.header.X-User}"}}
			})
			before := time.Now()
			resp := getPresign(t, h, "/oss/presign?filename=a%20b.JPG&type=image/jpeg")
			if resp.Method != "PUT" || resp.Headers["Content-Type"] != "image/jpeg" {
				t.Fatalf("response %+v", resp)
			}
			if !strings.HasPrefix(resp.Key, "in/") || !strings.HasSuffix(resp.Key, ".jpg") {
				t.Errorf("key %q", resp.Key)
			}
			u, err := url.Parse(resp.URL)
			if err != nil {
				t.Fatal(err)
			}
			if u.Host != "example-bucket.oss-cn-hangzhou.aliyuncs.com" || strings.TrimPrefix(u.Path, "/") != resp.Key {
				t.Errorf("url %s does not address the key %s", resp.URL, resp.Key)
			}
			q := u.Query()
			cb, _ := base64.StdEncoding.DecodeString(q.Get("callback"))
			if !strings.Contains(string(cb), `"callbackUrl":"https://app.example.com/cb"`) {
				t.Errorf("callback %s", cb)
			}
			cbv, _ := base64.StdEncoding.DecodeString(q.Get("callback-var"))
			var vars map[string]string
			if err := json.Unmarshal(cbv, &vars); err != nil || len(vars) != 2 || vars["x:user"] != "" {
				t.Errorf("callback-var %s", cbv)
			}
			// The binding names this exact key, the bucket and the variables.
			b, err := callback.Parse(vars["x:oss_binding"])
			key, _ := h.bindingKeys.ForHandler(context.Background())
			if err != nil || b.Kind != callback.ExactKey || b.Expiry < before.Add(15*time.Minute+callback.Grace).Unix() ||
				!hmac.Equal(b.MAC, callback.MAC(key, callback.ExactKey, "example-bucket", resp.Key, b.Expiry, map[string]string{"user": ""})) {
				t.Errorf("binding %q: %+v %v", vars["x:oss_binding"], b, err)
			}
			if version == osssign.V4 {
				want := refsign.PresignV4("testsecret", "example-bucket", resp.Key, "image/jpeg", q)
				if q.Get("x-oss-signature") != want {
					t.Errorf("x-oss-signature %s, reference %s", q.Get("x-oss-signature"), want)
				}
				if q.Get("x-oss-expires") != "900" || !strings.HasPrefix(q.Get("x-oss-credential"), "testid/") {
					t.Errorf("query %v", q)
				}
			} else {
				want := refsign.V1("testsecret", refsign.V1PresignString("PUT", "image/jpeg", "example-bucket", resp.Key, q))
				if q.Get("Signature") != want || q.Get("OSSAccessKeyId") != "testid" {
					t.Errorf("Signature %s, reference %s", q.Get("Signature"), want)
				}
				exp, _ := strconv.ParseInt(q.Get("Expires"), 10, 64)
				if d := time.Unix(exp, 0).Sub(before); d < 899*time.Second || d > 901*time.Second+time.Since(before) {
					t.Errorf("Expires %d is not 15m from now", exp)
				}
			}
		})
	}
}

func TestPresignPlainText(t *testing.T) {
	h := testHandler(t, nil)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/oss/presign?filename=x.txt&type=text/plain", nil)
	req.Header.Set("Accept", "text/plain")
	if err := h.ServeHTTP(rec, withReplacer(req), nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(rec.Body.String())
	if rec.Code != 200 || err != nil || u.Query().Get("x-oss-signature") == "" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
}

// Without a type hint the URL is signed for application/octet-stream and the
// response says so.
func TestPresignDefaultType(t *testing.T) {
	h := testHandler(t, nil)
	resp := getPresign(t, h, "/oss/presign?filename=data")
	if resp.Headers["Content-Type"] != defaultPresignType {
		t.Errorf("headers %v", resp.Headers)
	}
}

// TestPresignAnswerEscapesUploadURL: an upload_url that needs escaping in
// JSON still gives a valid answer whose url starts with it, in both
// versions.
func TestPresignAnswerEscapesUploadURL(t *testing.T) {
	for _, version := range []string{osssign.V4, osssign.V1} {
		for _, base := range []string{"https://up.example.com", `https://up.example.com/a"b\c`, "https://up.example.com/\u2028é"} {
			h := testHandler(t, func(h *Handler) {
				h.SignatureVersion = version
				h.UploadURL = base
			})
			rec := httptest.NewRecorder()
			req := withReplacer(httptest.NewRequest("GET", "/oss/presign?filename=a.png&type=image/png", nil))
			if err := h.ServeHTTP(rec, req, nextMustNotRun(t)); err != nil || rec.Code != 200 {
				t.Fatalf("%s %q: %d %v", version, base, rec.Code, err)
			}
			var body struct{ URL, Key string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s %q: %v in %s", version, base, err, rec.Body)
			}
			if !strings.HasPrefix(body.URL, base+"/") || body.Key == "" {
				t.Errorf("%s %q: url %q", version, base, body.URL)
			}
		}
	}
}
