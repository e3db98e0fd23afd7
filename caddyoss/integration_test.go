package caddyoss

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-oss/caddy-oss/internal/sts/ststest"
)

// Integration tests run a real Caddy in this test binary (caddytest): the
// admin endpoint stays on localhost:2999 and the tests must not run in
// parallel.

const integrationGlobal = `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	persist_config off
}
`

// testGlobal is integrationGlobal with Caddy's storage in a directory of
// the test's own, so replay records and binding keys start empty.
func testGlobal(t *testing.T) string {
	return strings.Replace(integrationGlobal, "persist_config off\n",
		"persist_config off\n\tstorage file_system "+t.TempDir()+"\n", 1)
}

func TestIntegrationSigningRoutes(t *testing.T) {
	tester := newTester(t)
	tester.InitServer(integrationGlobal+`
http://localhost:9080 {
	oss_upload {
		bucket example-bucket
		region cn-hangzhou
		access_key_id testid
		access_key_secret testsecret
		key_prefix uploads/{http.request.header.X-User}/
		max_size 1MB
		allow_types image/* application/pdf
	}
	respond "from the app"
}`, "caddyfile")

	get := func(target string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://localhost:9080"+target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := get("/oss/post-policy?filename=cat.png&type=image/png&size=100", "X-User", "alice")
	var policy struct {
		Key, Policy, Signature string
		Fields                 map[string]string
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &policy) != nil ||
		!strings.HasPrefix(policy.Key, "uploads/alice/") || policy.Fields["x-oss-signature"] != policy.Signature {
		t.Fatalf("post-policy: %d %s", resp.StatusCode, body)
	}

	resp, body = get("/oss/presign?filename=doc.pdf&type=application/pdf", "X-User", "bob")
	var presign presignResponse
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &presign) != nil ||
		!strings.HasPrefix(presign.Key, "uploads/bob/") || !strings.Contains(presign.URL, "x-oss-signature=") {
		t.Fatalf("presign: %d %s", resp.StatusCode, body)
	}

	resp, body = get("/oss/post-policy?filename=big.png&type=image/png&size=2000000", "X-User", "alice")
	if resp.StatusCode != 400 || !strings.Contains(body, `"error":"size 2000000 exceeds max_size 1000000"`) ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("oversized: %d %s", resp.StatusCode, body)
	}

	resp, body = get("/oss/presign?type=image/png")
	if resp.StatusCode != 403 || !strings.Contains(body, "key_prefix") {
		t.Errorf("no user: %d %s", resp.StatusCode, body)
	}

	// The STS route is off without an sts block: the request reaches the app.
	for _, p := range []string{"/", "/oss/sts", "/oss/callback"} {
		if resp, body = get(p); resp.StatusCode != 200 || body != "from the app" {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}

func TestIntegrationHandleErrors(t *testing.T) {
	tester := newTester(t)
	tester.InitServer(integrationGlobal+`
http://localhost:9080 {
	oss_upload {
		bucket example-bucket
		region cn-hangzhou
		access_key_id testid
		access_key_secret testsecret
		allow_types image/*
	}
	handle_errors {
		respond "styled {err.status_code}: {err.message}"
	}
}`, "caddyfile")
	req, _ := http.NewRequest("GET", "http://localhost:9080/oss/presign?type=text/html", nil)
	tester.AssertResponse(req, 400, `styled 400: type "text/html" is not in allow_types (image/*)`)
}

func TestIntegrationConfigErrors(t *testing.T) {
	tests := []struct{ name, block, want string }{
		{"missing bucket", "region cn-hangzhou", "bucket is required"},
		{"missing region", "bucket example-bucket", "region is required"},
		{"min over max", "bucket example-bucket\nregion cn-hangzhou\nmin_size 2MB\nmax_size 1MB", "min_size (2000000) is greater than max_size (1000000)"},
		{"sts without role", "bucket example-bucket\nregion cn-hangzhou\nsts {\n}", "sts.role_arn is required"},
		{"sts duration", "bucket example-bucket\nregion cn-hangzhou\nsts {\nrole_arn acs:ram::1:role/r\nduration 13h\n}", "sts.duration"},
		{"expires", "bucket example-bucket\nregion cn-hangzhou\nexpires 8d", "expires: must be between 1s and 7 days"},
		// Caught by the Caddyfile adapter, with the line (the block starts
		// on line 10); the admin API answers in JSON, hence \".
		{"min over max, line", "bucket example-bucket\nregion cn-hangzhou\nmin_size 2MB\nmax_size 1MB", "min_size (2000000) is greater than max_size (1000000), at Caddyfile:13"},
		{"size", "bucket example-bucket\nmax_size ten", "max_size: invalid size 'ten' (use bytes or units such as 20MB or 20MiB), at Caddyfile:11"},
		{"bucket", "bucket Example_Bucket", `bucket: \"Example_Bucket\" is not a valid OSS bucket name (3-63 lower-case letters, digits and '-'), at Caddyfile:10`},
		{"region", "bucket example-bucket\nregion oss-cn-hangzhou", `region: use the region id (\"cn-hangzhou\"), not \"oss-cn-hangzhou\", at Caddyfile:11`},
		{"template placeholder", "bucket example-bucket\nkey_template {user}/{id}", `key_template: \"{user}/{id}\" uses unknown placeholder(s) {user}; use {id}, {ext}, {filename} or a Caddy placeholder ({http.*}, {env.*}, {time.*}, {system.*}), at Caddyfile:11`},
		{"template without id", "key_template {filename}", "key_template: '{filename}' has no {id}, so uploads could share a key and overwrite each other; add {id}, or write 'key_template {filename} overwrite' to allow it, at Caddyfile:10"},
		{"route path", "policy_path oss/policy", `policy_path: \"oss/policy\" must start with '/', at Caddyfile:10`},
		{"same route path", "policy_path /sign\npresign_path /sign", `policy_path and presign_path are both \"/sign\", at Caddyfile:11`},
		{"refresh_before", "sts {\nduration 30m\nrefresh_before 30m\n}", "sts.refresh_before: must be shorter than sts.duration (30m0s), got 30m0s, at Caddyfile:12"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caddytest.AssertLoadError(t, integrationGlobal+"http://localhost:9080 {\noss_upload {\n"+tc.block+"\n}\n}", "caddyfile", tc.want)
		})
	}
}

// JSON configs skip the Caddyfile checks; Validate makes the same ones.
func TestIntegrationConfigErrorsJSON(t *testing.T) {
	config := `{
	"admin": {"listen": "localhost:2999"},
	"apps": {"http": {"http_port": 9080, "servers": {"srv0": {"listen": [":9080"], "routes": [{"handle": [{
		"handler": "oss_upload", "bucket": "example-bucket", "region": "cn-hangzhou",
		"access_key_id": "testid", "access_key_secret": "testsecret",
		"key_template": "{filename}"
	}]}]}}}}
}`
	caddytest.AssertLoadError(t, config, "json", `key_template: \"{filename}\" has no {id}, so uploads could share a key and overwrite each other; add {id}, or set key_template_overwrite to allow it`)
}

// With no key pair and nothing in the default credential chain, loading
// the config fails and says what to set.
func TestIntegrationNoCredentials(t *testing.T) {
	noCredentialsEnv(t)
	caddytest.AssertLoadError(t, integrationGlobal+`
http://localhost:9080 {
	oss_upload {
		bucket example-bucket
		region cn-hangzhou
	}
}`, "caddyfile", "no credentials: set access_key_id and access_key_secret, or ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET")
}

// The genuine OSS callback E1 verifies through a running Caddy and reaches
// the upstream app through reverse_proxy; a tampered copy never does.
func TestIntegrationCallback(t *testing.T) {
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.RequestURI+" "+r.Header.Get("X-Oss-Callback-Verified")+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Status":"OK"}`))
	}))
	defer upstream.Close()

	tester := newTester(t)
	tester.InitServer(testGlobal(t)+`
http://localhost:9080 {
	oss_upload {
		policy_path off
		presign_path off
		callback_path /index.php
		callback {
			verify_only
		}
	}
	reverse_proxy `+strings.TrimPrefix(upstream.URL, "http://")+`
}`, "caddyfile")

	post := func(sig string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", "http://localhost:9080"+e1Path, strings.NewReader(e1Body))
		req.Header.Set("Authorization", sig)
		req.Header.Set("X-Oss-Pub-Key-Url", e1Key)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Oss-Callback-Verified", "true") // a forged copy is dropped
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post(e1Sig)
	if resp.StatusCode != 200 || body != `{"Status":"OK"}` {
		t.Fatalf("genuine callback: %d %s", resp.StatusCode, body)
	}
	// The app gets the callback path without the query OSS was given.
	if len(got) != 1 || got[0] != "POST /index.php true "+e1Body {
		t.Fatalf("upstream received %q", got)
	}
	tampered := "lKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA=="
	resp, body = post(tampered)
	if resp.StatusCode != 403 || !strings.Contains(body, "signature") || len(got) != 1 {
		t.Errorf("tampered callback: %d %s, upstream calls %d", resp.StatusCode, body, len(got))
	}
}

// The STS route through a running Caddy, against the local fake STS.
func TestIntegrationSTSRoute(t *testing.T) {
	f := ststest.NewServer(t)
	tester := newTester(t)
	tester.InitServer(integrationGlobal+`
http://localhost:9080 {
	oss_upload {
		bucket example-bucket
		region cn-hangzhou
		access_key_id testid
		access_key_secret testsecret
		key_prefix uploads/{http.request.header.X-User}/
		sts {
			role_arn acs:ram::123:role/up
			session_name web-{http.request.header.X-User}
			endpoint `+f.URL+`
		}
	}
}`, "caddyfile")
	req, _ := http.NewRequest("GET", "http://localhost:9080/oss/sts", nil)
	req.Header.Set("X-User", "carol")
	resp := tester.AssertResponseCode(req, 200)
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body["AccessKeyId"] != "STS.key1" || body["Prefix"] != "uploads/carol/" || body["SecurityToken"] != "CAIStoken1" {
		t.Errorf("response %v", body)
	}
	if f.LastQuery["RoleSessionName"] != "web-carol" {
		t.Errorf("AssumeRole %v", f.LastQuery)
	}
	f.Set(func(f *ststest.Server) { f.Mode = ststest.Down })
	req, _ = http.NewRequest("GET", "http://localhost:9080/oss/sts", nil)
	req.Header.Set("X-User", "dave")
	resp = tester.AssertResponseCode(req, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	resp.Body.Close()
}
