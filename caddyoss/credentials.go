package caddyoss

import (
	"errors"
	"fmt"

	"github.com/aliyun/credentials-go/credentials"
)

// creds is one set of OSS credentials the server signs with.
type creds struct {
	ID     string
	Secret string
	// Token is the security token of temporary credentials; empty for an
	// AccessKey pair.
	Token string
}

// credentialSource yields the server's own credentials. For an explicit key
// pair it returns a constant; otherwise it asks Alibaba Cloud's default
// credential chain, whose providers cache and refresh on their own.
type credentialSource struct {
	static *creds
	chain  credentials.Credential
}

// newCredentialSource returns a source for the explicit pair, or for the
// default credential chain (environment variables, OIDC/RRSA, config
// files, ECS RAM role) when both id and secret are empty. Building it does no
// I/O.
func newCredentialSource(id, secret string) (*credentialSource, error) {
	if id != "" || secret != "" {
		if id == "" || secret == "" {
			return nil, errors.New("access_key_id and access_key_secret must be set together")
		}
		return &credentialSource{static: &creds{ID: id, Secret: secret}}, nil
	}
	chain, err := credentials.NewCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("default credential chain: %w", err)
	}
	return &credentialSource{chain: chain}, nil
}

// get returns the current credentials.
func (s *credentialSource) get() (creds, error) {
	if s.static != nil {
		return *s.static, nil
	}
	m, err := s.chain.GetCredential()
	if err != nil {
		return creds{}, fmt.Errorf("no Alibaba Cloud credentials: %w", err)
	}
	c := creds{}
	if m.AccessKeyId != nil {
		c.ID = *m.AccessKeyId
	}
	if m.AccessKeySecret != nil {
		c.Secret = *m.AccessKeySecret
	}
	if m.SecurityToken != nil {
		c.Token = *m.SecurityToken
	}
	if c.ID == "" || c.Secret == "" {
		return creds{}, errors.New("no Alibaba Cloud credentials: the credential chain returned an empty key")
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

// GetAccessKeyID, GetAccessKeySecret and GetSecurityToken make ossCreds an
// aliyun-oss-go-sdk Credentials value.
type ossCreds creds

func (c ossCreds) GetAccessKeyID() string     { return c.ID }
func (c ossCreds) GetAccessKeySecret() string { return c.Secret }
func (c ossCreds) GetSecurityToken() string   { return c.Token }
