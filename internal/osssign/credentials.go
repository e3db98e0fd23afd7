package osssign

import "time"

// Credentials are one set of Alibaba Cloud credentials to sign with: an
// AccessKey pair, or temporary (STS) credentials with their token and
// expiry.
type Credentials struct {
	ID     string
	Secret string
	// Token is the security token of temporary credentials; empty for an
	// AccessKey pair.
	Token string
	// Expiration is when temporary credentials expire; zero when
	// unknown or for an AccessKey pair.
	Expiration time.Time
}

// GetAccessKeyID, GetAccessKeySecret and GetSecurityToken make Credentials
// an aliyun-oss-go-sdk Credentials value.

// GetAccessKeyID returns c.ID.
func (c Credentials) GetAccessKeyID() string { return c.ID }

// GetAccessKeySecret returns c.Secret.
func (c Credentials) GetAccessKeySecret() string { return c.Secret }

// GetSecurityToken returns c.Token.
func (c Credentials) GetSecurityToken() string { return c.Token }
