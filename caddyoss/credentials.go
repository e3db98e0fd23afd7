package caddyoss

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/aliyun/credentials-go/credentials"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// credentialSource yields the server's own credentials. For an explicit key
// pair it returns a constant; otherwise it asks Alibaba Cloud's default
// credential chain, whose providers cache and refresh on their own.
type credentialSource struct {
	static *osssign.Credentials
	chain  credentials.Credential
	// origin says where the credentials come from, in the words of the
	// startup line (see credentialOrigin); set by resolve for the chain.
	origin string
}

// Where credentials come from, as the startup line says it.
const (
	originStatic          = "static"           // the key pair in the config
	originEnvironment     = "environment"      // ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET[/SECURITY_TOKEN]
	originOIDC            = "oidc"             // OIDC role (ACK RRSA)
	originCLIProfile      = "cli_profile"      // ~/.aliyun/config.json
	originCredentialsFile = "credentials_file" // ~/.alibabacloud/credentials
	originECSRAMRole      = "ecs_ram_role"     // the ECS instance's RAM role
	originCredentialsURI  = "credentials_uri"  // ALIBABA_CLOUD_CREDENTIALS_URI
)

// credentialResolveTimeout bounds the first lookup of the default chain at
// provision. The chain's ECS provider asks the instance metadata service
// (1 s connect and 1 s read timeout per request, several requests), and
// the OIDC and URI providers call out too; a host without credentials
// must not hold up `caddy validate` or `caddy run` for longer than this.
const credentialResolveTimeout = 5 * time.Second

// credentialsRetryAfter is what clients of the signing routes are told to
// wait when the credential chain fails after startup.
const credentialsRetryAfter = "10"

// errNoCredentials says what to set when no credentials were found.
var errNoCredentials = errors.New("no credentials: set access_key_id and access_key_secret, " +
	"or ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for temporary ones), " +
	"or ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE (RRSA), " +
	"or a profile in ~/.alibabacloud/credentials (ALIBABA_CLOUD_CREDENTIALS_FILE) or ~/.aliyun/config.json (ALIBABA_CLOUD_CONFIG_FILE), " +
	"or ALIBABA_CLOUD_CREDENTIALS_URI, or run on ECS with a RAM role")

// newCredentialSource returns a source for the explicit pair, or for the
// default credential chain (environment variables, OIDC/RRSA, config
// files, ECS RAM role, credentials URI) when both id and secret are empty.
// Building it does no I/O; resolve does.
func newCredentialSource(id, secret string) (*credentialSource, error) {
	if id != "" || secret != "" {
		if id == "" || secret == "" {
			return nil, errors.New("access_key_id and access_key_secret must be set together")
		}
		return &credentialSource{static: &osssign.Credentials{ID: id, Secret: secret}, origin: originStatic}, nil
	}
	chain, err := credentials.NewCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("default credential chain: %w", err)
	}
	return &credentialSource{chain: chain}, nil
}

// resolve asks the default chain for credentials once, within timeout,
// so that a server without credentials fails at load with errNoCredentials
// rather than at its first upload, and records which provider answered.
// The chain then keeps asking that provider. A static pair needs nothing.
func (s *credentialSource) resolve(ctx context.Context, timeout time.Duration) error {
	if s.static != nil {
		return nil
	}
	type result struct {
		m   *credentials.CredentialModel
		err error
	}
	done := make(chan result, 1) // the lookup may outlive a timeout
	go func() {
		m, err := s.chain.GetCredential()
		done <- result{m, err}
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case r := <-done:
		if r.err != nil {
			return fmt.Errorf("%w (%v)", errNoCredentials, r.err)
		}
		if _, err := credsFromModel(r.m); err != nil {
			return fmt.Errorf("%w (%v)", errNoCredentials, err)
		}
		s.origin = credentialOrigin(tea.StringValue(r.m.ProviderName))
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (the default credential chain did not answer within %s)", errNoCredentials, timeout)
	}
}

// credentialOrigin maps the provider name credentials-go reports for the
// default chain ("default/env", "default/profile/static_ak", …: the chain,
// then the provider that answered, then any provider inside it) onto the
// startup line's words; another provider keeps its own name.
func credentialOrigin(providerName string) string {
	name := strings.TrimPrefix(providerName, "default/")
	first, _, _ := strings.Cut(name, "/")
	switch first {
	case "env":
		return originEnvironment
	case "oidc_role_arn":
		return originOIDC
	case "cli_profile":
		return originCLIProfile
	case "profile":
		return originCredentialsFile
	case "ecs_ram_role":
		return originECSRAMRole
	case "credential_uri":
		return originCredentialsURI
	case "":
		return "default_chain"
	}
	return "default_chain:" + name
}

// get returns the current credentials.
func (s *credentialSource) get() (osssign.Credentials, error) {
	if s.static != nil {
		return *s.static, nil
	}
	m, err := s.chain.GetCredential()
	if err != nil {
		return osssign.Credentials{}, fmt.Errorf("no Alibaba Cloud credentials: %w", err)
	}
	return credsFromModel(m)
}

// credsFromModel takes the key, secret and token out of what the chain
// returned.
func credsFromModel(m *credentials.CredentialModel) (osssign.Credentials, error) {
	c := osssign.Credentials{
		ID:     tea.StringValue(m.AccessKeyId),
		Secret: tea.StringValue(m.AccessKeySecret),
		Token:  tea.StringValue(m.SecurityToken),
	}
	if c.ID == "" || c.Secret == "" {
		return osssign.Credentials{}, errors.New("no Alibaba Cloud credentials: the credential chain returned an empty key")
	}
	return c, nil
}

// credential returns the source as a credentials-go Credential, the form
// the STS SDK takes.
func (s *credentialSource) credential() (credentials.Credential, error) {
	if s.chain != nil {
		return s.chain, nil
	}
	cfg := new(credentials.Config).SetType("access_key").
		SetAccessKeyId(s.static.ID).SetAccessKeySecret(s.static.Secret)
	return credentials.NewCredential(cfg)
}

// GetCredentials and GetCredentialsE make the source an aliyun-oss-go-sdk
// credentials provider: the SDK asks on every call, so rotated credentials
// take effect without a new client.

// GetCredentials returns the current credentials (empty ones on error).
func (s *credentialSource) GetCredentials() oss.Credentials {
	c, _ := s.get()
	return c
}

// GetCredentialsE returns the current credentials.
func (s *credentialSource) GetCredentialsE() (oss.Credentials, error) {
	return s.get()
}
