package caddyoss

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-oss/caddy-oss/internal/refsign"
)

func TestPostPolicyRoute(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.KeyPrefix = "uploads/"
		h.MaxSize = 1 << 20
		h.AllowTypes = []string{"image/*"}
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/oss/post-policy?filename=My%20Photo.PNG&type=image/png&size=1000", nil)
	if err := h.ServeHTTP(rec, req, nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp struct {
		Method, URL, Key, Dir, Policy, Signature string
		Fields                                   map[string]string
		Credential                               string `json:"x_oss_credential"`
		Date                                     string `json:"x_oss_date"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Method != "POST" || resp.URL != "https://example-bucket.oss-cn-hangzhou.aliyuncs.com" || resp.Dir != "uploads/" {
		t.Errorf("unexpected response %s", rec.Body)
	}
	if !strings.HasPrefix(resp.Key, "uploads/") || !strings.HasSuffix(resp.Key, ".png") || len(resp.Key) != len("uploads/")+32+4 {
		t.Errorf("key = %q", resp.Key)
	}
	if resp.Fields["key"] != resp.Key || resp.Fields["policy"] != resp.Policy || resp.Fields["Content-Type"] != "image/png" ||
		resp.Fields["success_action_status"] != "200" || resp.Fields["x-oss-signature"] != resp.Signature {
		t.Errorf("fields = %v", resp.Fields)
	}
	// The signature verifies with an independent HMAC chain.
	if want := refsign.PostV4("testsecret", resp.Date[:8], "cn-hangzhou", resp.Policy); want != resp.Signature {
		t.Errorf("signature %s, independent computation %s", resp.Signature, want)
	}
	js, _ := base64.StdEncoding.DecodeString(resp.Policy)
	for _, c := range []string{`["content-length-range",0,1048576]`, `["eq","$key","` + resp.Key + `"]`,
		`["eq","$content-type","image/png"]`, `["eq","$x-oss-content-type","image/png"]`,
		`["eq","$x-oss-object-acl","default"]`, `["eq","$x-oss-storage-class","Standard"]`, `{"bucket":"example-bucket"}`} {
		if !strings.Contains(string(js), c) {
			t.Errorf("policy %s lacks %s", js, c)
		}
	}
	if strings.Contains(string(js), "starts-with") {
		t.Errorf("policy %s leaves the key open", js)
	}
	for name, want := range map[string]string{"x-oss-content-type": "image/png", "x-oss-object-acl": "default", "x-oss-storage-class": "Standard"} {
		if resp.Fields[name] != want {
			t.Errorf("field %s = %q, want %q", name, resp.Fields[name], want)
		}
	}
}

// client_keys opens the key below the prefix, as Alibaba's samples expect;
// storage_class changes the pinned class.
func TestPostPolicyClientKeys(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.KeyPrefix = "uploads/"
		h.ClientKeys = true
		h.StorageClass = "ia"
	})
	req := withReplacer(httptest.NewRequest("GET", "/oss/post-policy?filename=a.txt", nil))
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, req, nextMustNotRun(t)); err != nil || rec.Code != 200 {
		t.Fatalf("%v %d %s", err, rec.Code, rec.Body)
	}
	var resp struct{ Policy string }
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	js, _ := base64.StdEncoding.DecodeString(resp.Policy)
	if !strings.Contains(string(js), `["starts-with","$key","uploads/"]`) ||
		!strings.Contains(string(js), `["eq","$x-oss-storage-class","IA"]`) || strings.Contains(string(js), `["eq","$key"`) {
		t.Errorf("policy %s", js)
	}
}

func TestSigningRouteErrors(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.MaxSize = 1000
		h.MinSize = 10
		h.AllowTypes = []string{"image/*", "application/pdf"}
		h.KeyPrefix = "u/{http.request.header.X-User}/"
	})
	tests := []struct {
		name, method, target string
		header               map[string]string
		status               int
		msg                  string
	}{
		{"too large", "GET", "/oss/post-policy?type=image/png&size=1001", map[string]string{"X-User": "a"}, 400, "exceeds max_size 1000"},
		{"too small", "GET", "/oss/presign?type=image/png&size=9", map[string]string{"X-User": "a"}, 400, "below min_size 10"},
		{"bad size", "GET", "/oss/post-policy?type=image/png&size=-1", map[string]string{"X-User": "a"}, 400, "non-negative integer"},
		{"type not allowed", "GET", "/oss/post-policy?type=text/html", map[string]string{"X-User": "a"}, 400, "not in allow_types"},
		{"type missing", "GET", "/oss/post-policy", map[string]string{"X-User": "a"}, 400, "type is required"},
		{"presign default type not allowed", "GET", "/oss/presign", map[string]string{"X-User": "a"}, 400, `type "application/octet-stream" (signed because the request names no type) is not in allow_types`},
		{"bad type", "GET", "/oss/presign?type=%01", map[string]string{"X-User": "a"}, 400, "not a valid media type"},
		{"no user", "GET", "/oss/post-policy?type=image/png", nil, 403, "key_prefix"},
		{"user escapes prefix", "GET", "/oss/post-policy?type=image/png", map[string]string{"X-User": ".."}, 403, "segment"},
		{"user with slash", "GET", "/oss/post-policy?type=image/png", map[string]string{"X-User": "a/../../b"}, 403, "segment"},
		{"wrong method", "POST", "/oss/post-policy?type=image/png", map[string]string{"X-User": "a"}, 405, "use GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, tc.target, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			req = withReplacer(req)
			if err := h.ServeHTTP(rec, req, nextMustNotRun(t)); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			var body struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, tc.msg) {
				t.Errorf("body %s does not say %q", rec.Body, tc.msg)
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestUnmatchedRequestsPassThrough(t *testing.T) {
	h := testHandler(t, nil)
	called := false
	next := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		called = true
		w.WriteHeader(418)
		return nil
	})
	for _, target := range []string{"/", "/oss/post-policy/x", "/oss/sts", "/oss/callback", "/other"} {
		called = false
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil), next); err != nil {
			t.Fatal(err)
		}
		if !called || rec.Code != 418 {
			t.Errorf("%s: next called=%v status=%d", target, called, rec.Code)
		}
	}
}
