package caddyoss

import (
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// With no key pair configured, the default credential chain is used; when
// it yields temporary credentials, every signed output carries the token
// (protocol §5.7).
func TestDefaultChainWithSecurityToken(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.chainid")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "chainsecret")
	t.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "CAIStoken==")
	for _, version := range []string{sigV4, sigV1} {
		t.Run(version, func(t *testing.T) {
			h := testHandler(t, func(h *Handler) {
				h.AccessKeyID, h.AccessKeySecret, h.SignatureVersion = "", "", version
			})
			rec := httptest.NewRecorder()
			if err := h.ServeHTTP(rec, withReplacer(httptest.NewRequest("GET", "/oss/post-policy?filename=a.txt", nil)), nextMustNotRun(t)); err != nil {
				t.Fatal(err)
			}
			var post struct {
				Policy, Signature string
				Fields            map[string]string
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &post); err != nil || rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if post.Fields["x-oss-security-token"] != "CAIStoken==" {
				t.Errorf("fields %v", post.Fields)
			}
			js, _ := base64.StdEncoding.DecodeString(post.Policy)
			if !strings.Contains(string(js), `{"x-oss-security-token":"CAIStoken=="}`) {
				t.Errorf("policy %s", js)
			}
			if version == sigV1 && (post.Fields["OSSAccessKeyId"] != "STS.chainid" || post.Signature != signV1("chainsecret", post.Policy)) {
				t.Errorf("v1 fields %v", post.Fields)
			}

			resp := getPresign(t, h, "/oss/presign?filename=a.txt&type=text/plain")
			u, _ := url.Parse(resp.URL)
			q := u.Query()
			if version == sigV4 {
				want := refPresignV4("chainsecret", "example-bucket", resp.Key, "text/plain", q)
				if q.Get("x-oss-security-token") != "CAIStoken==" || q.Get("x-oss-signature") != want {
					t.Errorf("v4 url %s", resp.URL)
				}
			} else {
				want := refV1("chainsecret", refV1PresignString("PUT", "text/plain", "example-bucket", resp.Key, q))
				if q.Get("security-token") != "CAIStoken==" || q.Get("Signature") != want || q.Get("OSSAccessKeyId") != "STS.chainid" {
					t.Errorf("v1 url %s", resp.URL)
				}
			}
		})
	}
}

func TestCredentialSourcePairs(t *testing.T) {
	if _, err := newCredentialSource("id", ""); err == nil {
		t.Error("an id without a secret was accepted")
	}
	src, err := newCredentialSource("id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.get()
	if err != nil || c != (creds{ID: "id", Secret: "secret"}) {
		t.Errorf("%v %v", c, err)
	}
}
