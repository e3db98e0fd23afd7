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

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/internal/callback"
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
	for _, version := range []string{sigV4, sigV1} {
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
			key, _ := h.bindingKeys.forHandler(context.Background())
			if err != nil || b.Kind != callback.ExactKey || b.Expiry < before.Add(15*time.Minute+bindingGrace).Unix() ||
				!hmac.Equal(b.MAC, callback.MAC(key, callback.ExactKey, "example-bucket", resp.Key, b.Expiry, map[string]string{"user": ""})) {
				t.Errorf("binding %q: %+v %v", vars["x:oss_binding"], b, err)
			}
			if version == sigV4 {
				want := refPresignV4("testsecret", "example-bucket", resp.Key, "image/jpeg", q)
				if q.Get("x-oss-signature") != want {
					t.Errorf("x-oss-signature %s, reference %s", q.Get("x-oss-signature"), want)
				}
				if q.Get("x-oss-expires") != "900" || !strings.HasPrefix(q.Get("x-oss-credential"), "testid/") {
					t.Errorf("query %v", q)
				}
			} else {
				want := refV1("testsecret", refV1PresignString("PUT", "image/jpeg", "example-bucket", resp.Key, q))
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

// presignV4 signs exactly what aliyun-oss-go-sdk's SignURL signs: the same
// parameters and the same signature for the same instant, with and without
// a security token and callback parameters, for keys that need encoding.
func TestPresignV4MatchesSDK(t *testing.T) {
	for _, tc := range []struct {
		name, key, ct string
		token         string
		params        [][2]string
	}{
		{"plain", "uploads/a.png", "image/png", "", nil},
		{"encoded key", "u/alice smith/ünï+%*~.bin", "application/octet-stream", "", nil},
		{"sts and callback", "in/x.txt", "text/plain; charset=utf-8", "CAIS/token+=",
			[][2]string{{"callback", "eyJjYWxsYmFja1VybCI6Imh0dHBzOi8vYS5leGFtcGxlL2NiIn0="}, {"callback-var", "eyJ4OnUiOiJ2In0="}}},
		{"upload part, no type", "u/big.bin", "", "",
			[][2]string{{"partNumber", "7"}, {"uploadId", "0004B9894A22E5B1888A1E29F823****"}}},
		{"upload part with sts", "u/a b.bin", "", "CAIS/token+=",
			[][2]string{{"partNumber", "10000"}, {"uploadId", "9A0F6A2B5C4D3E2F1A0B9C8D7E6F5A4B"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := creds{ID: "testid", Secret: "testsecret", Token: tc.token}
			opts := []oss.ClientOption{oss.UseCname(true), oss.Region("cn-hangzhou"), oss.AuthVersion(oss.AuthV4)}
			if tc.token != "" {
				opts = append(opts, oss.SecurityToken(tc.token))
			}
			client, err := oss.New("https://example-bucket.oss-cn-hangzhou.aliyuncs.com", c.ID, c.Secret, opts...)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := client.Bucket("example-bucket")
			var sdkOpts []oss.Option
			if tc.ct != "" {
				sdkOpts = append(sdkOpts, oss.ContentType(tc.ct))
			}
			for _, p := range tc.params {
				sdkOpts = append(sdkOpts, oss.AddParam(p[0], p[1]))
			}
			sdkURL, err := b.SignURL(tc.key, oss.HTTPPut, 900, sdkOpts...)
			if err != nil {
				t.Fatal(err)
			}
			su, _ := url.Parse(sdkURL)
			date, err := time.Parse("20060102T150405Z", su.Query().Get("x-oss-date"))
			if err != nil {
				t.Fatal(err)
			}
			ours := presignV4(presignV4Input{
				baseURL: "https://example-bucket.oss-cn-hangzhou.aliyuncs.com", bucket: "example-bucket", region: "cn-hangzhou",
				key: tc.key, contentType: tc.ct, expires: 900 * time.Second, now: date, params: tc.params,
			}, c, new(v4KeyCache))
			ou, _ := url.Parse(ours)
			if ou.Path != su.Path || ou.Host != su.Host {
				t.Errorf("path %q, SDK %q", ou.Path, su.Path)
			}
			oq, sq := ou.Query(), su.Query()
			if len(oq) != len(sq) {
				t.Errorf("parameters %v, SDK %v", oq, sq)
			}
			for k := range sq {
				if oq.Get(k) != sq.Get(k) {
					t.Errorf("%s = %q, SDK %q", k, oq.Get(k), sq.Get(k))
				}
			}
			// And an independent reference signer agrees.
			if want := refPresignV4(c.Secret, "example-bucket", tc.key, tc.ct, oq); oq.Get("x-oss-signature") != want {
				t.Errorf("signature %s, reference %s", oq.Get("x-oss-signature"), want)
			}
		})
	}
}

// TestPresignAnswerEscapesUploadURL: an upload_url that needs escaping in
// JSON still gives a valid answer whose url starts with it, in both
// versions.
func TestPresignAnswerEscapesUploadURL(t *testing.T) {
	for _, version := range []string{sigV4, sigV1} {
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
