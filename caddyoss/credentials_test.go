package caddyoss

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/refsign"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// With no key pair configured, the default credential chain is used; when
// it yields temporary credentials, every signed output carries the token
// (protocol §5.7).
func TestDefaultChainWithSecurityToken(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.chainid")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "chainsecret")
	t.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "CAIStoken==")
	for _, version := range []string{osssign.V4, osssign.V1} {
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
			if version == osssign.V1 && (post.Fields["OSSAccessKeyId"] != "STS.chainid" || post.Signature != refsign.V1("chainsecret", post.Policy)) {
				t.Errorf("v1 fields %v", post.Fields)
			}

			resp := getPresign(t, h, "/oss/presign?filename=a.txt&type=text/plain")
			u, _ := url.Parse(resp.URL)
			q := u.Query()
			if version == osssign.V4 {
				want := refsign.PresignV4("chainsecret", "example-bucket", resp.Key, "text/plain", q)
				if q.Get("x-oss-security-token") != "CAIStoken==" || q.Get("x-oss-signature") != want {
					t.Errorf("v4 url %s", resp.URL)
				}
			} else {
				want := refsign.V1("chainsecret", refsign.V1PresignString("PUT", "text/plain", "example-bucket", resp.Key, q))
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
	if err != nil || c != (osssign.Credentials{ID: "id", Secret: "secret"}) {
		t.Errorf("%v %v", c, err)
	}
}

// noCredentialsEnv leaves the default credential chain nothing to find: no
// ALIBABA_CLOUD_* or ALICLOUD_* variables, HOME and both credentials files
// in an empty directory, and the ECS metadata lookup switched off
// (ALIBABA_CLOUD_ECS_METADATA_DISABLED), so nothing leaves the machine.
func noCredentialsEnv(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ALIBABA_CLOUD_") || strings.HasPrefix(k, "ALICLOUD_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("ALIBABA_CLOUD_CONFIG_FILE", filepath.Join(dir, "config.json"))
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	return dir
}

// provision provisions h as a Caddy module would be, with a storage of
// the test's own, and returns Provision's error. Cleanup runs at the end
// of the test, as Caddy runs it after a failed Provision or an unload.
func provision(t *testing.T, h *Handler) error {
	t.Helper()
	h.storage = &certmagic.FileStorage{Path: t.TempDir()}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	t.Cleanup(func() { _ = h.Cleanup() })
	return h.Provision(ctx)
}

// Without a key pair and with nothing in the default chain, Provision
// fails at once and says what to set.
func TestProvisionNoCredentials(t *testing.T) {
	noCredentialsEnv(t)
	start := time.Now()
	err := provision(t, &Handler{Bucket: "example-bucket", Region: "cn-hangzhou"})
	if err == nil || !errors.Is(err, errNoCredentials) ||
		!strings.Contains(err.Error(), "no credentials: set access_key_id and access_key_secret, or ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET") {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
	// Bound callbacks confirm facts with OSS, so they need credentials too.
	err = provision(t, &Handler{Bucket: "example-bucket", Region: "cn-hangzhou", PolicyPath: routeOff, PresignPath: routeOff,
		Callback: &CallbackConfig{}})
	if !errors.Is(err, errNoCredentials) {
		t.Errorf("bound callbacks: %v", err)
	}
	// An instance that only verifies callbacks needs none.
	h := &Handler{PolicyPath: routeOff, PresignPath: routeOff, Callback: &CallbackConfig{VerifyOnly: true}}
	if err := provision(t, h); err != nil || h.creds != nil {
		t.Errorf("verify_only: %v, creds %v", err, h.creds)
	}
}

// blockingChain is a default chain that never answers.
type blockingChain struct{ release chan struct{} }

func (c blockingChain) GetAccessKeyId() (*string, error)     { return nil, nil }
func (c blockingChain) GetAccessKeySecret() (*string, error) { return nil, nil }
func (c blockingChain) GetSecurityToken() (*string, error)   { return nil, nil }
func (c blockingChain) GetBearerToken() *string              { return nil }
func (c blockingChain) GetType() *string                     { return nil }
func (c blockingChain) GetCredential() (*credentials.CredentialModel, error) {
	<-c.release
	return nil, errors.New("released")
}

// A chain that hangs (an unreachable metadata service) cannot hold up the
// config load for longer than the bound.
func TestCredentialResolveTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	src := &credentialSource{chain: blockingChain{release}}
	start := time.Now()
	err := src.resolve(context.Background(), 50*time.Millisecond)
	if !errors.Is(err, errNoCredentials) || !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Errorf("error %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
}

// resolve names the provider of credentials-go's default chain that
// answered, in the startup line's words.
func TestCredentialResolveOrigin(t *testing.T) {
	t.Run("environment", func(t *testing.T) {
		noCredentialsEnv(t)
		t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "envid")
		t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret")
		assertOrigin(t, originEnvironment)
	})
	t.Run("credentials file", func(t *testing.T) {
		dir := noCredentialsEnv(t)
		writeFile(t, filepath.Join(dir, "credentials"), "[default]\ntype = access_key\naccess_key_id = fileid\naccess_key_secret = filesecret\n")
		assertOrigin(t, originCredentialsFile)
	})
	t.Run("cli profile", func(t *testing.T) {
		dir := noCredentialsEnv(t)
		writeFile(t, filepath.Join(dir, "config.json"),
			`{"current":"default","profiles":[{"name":"default","mode":"AK","access_key_id":"cliid","access_key_secret":"clisecret"}]}`)
		assertOrigin(t, originCLIProfile)
	})
	t.Run("static", func(t *testing.T) {
		src, err := newCredentialSource("id", "secret")
		if err != nil || src.resolve(context.Background(), time.Second) != nil || src.origin != originStatic {
			t.Errorf("%v %+v", err, src)
		}
	})
}

func assertOrigin(t *testing.T, want string) {
	t.Helper()
	src, err := newCredentialSource("", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.resolve(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if src.origin != want {
		t.Errorf("origin %q, want %q", src.origin, want)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialOrigin(t *testing.T) {
	for name, want := range map[string]string{
		"default/env":                                originEnvironment,
		"default/oidc_role_arn":                      originOIDC,
		"default/cli_profile/static_ak":              originCLIProfile,
		"default/cli_profile/ram_role_arn/static_ak": originCLIProfile,
		"default/profile/static_ak":                  originCredentialsFile,
		"default/ecs_ram_role":                       originECSRAMRole,
		"default/credential_uri":                     originCredentialsURI,
		"default/external":                           "default_chain:external",
		"":                                           "default_chain",
	} {
		if got := credentialOrigin(name); got != want {
			t.Errorf("credentialOrigin(%q) = %q, want %q", name, got, want)
		}
	}
}

// Credentials that worked at startup and fail later (an expired role, a
// removed variable) make the signing routes answer 503 with Retry-After,
// not 500.
func TestCredentialsFailAfterStartup(t *testing.T) {
	noCredentialsEnv(t)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "envid")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret")
	h := testHandler(t, func(h *Handler) { h.AccessKeyID, h.AccessKeySecret = "", "" })
	if h.creds.origin != originEnvironment {
		t.Errorf("origin %q", h.creds.origin)
	}
	os.Unsetenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
	for _, target := range []string{"/oss/post-policy?filename=a.txt", "/oss/presign?filename=a.txt"} {
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, withReplacer(httptest.NewRequest("GET", target, nil)), nextMustNotRun(t)); err != nil {
			t.Fatal(err)
		}
		if rec.Code != 503 || rec.Header().Get("Retry-After") != credentialsRetryAfter ||
			rec.Header().Get("Content-Type") != "application/json" ||
			strings.TrimSpace(rec.Body.String()) != `{"error":"signing credentials are unavailable; retry later"}` {
			t.Errorf("%s: %d %v %s", target, rec.Code, rec.Header(), rec.Body)
		}
	}
}
