package caddyoss

import (
	"fmt"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// newServerBucket builds a client for server-side OSS calls at the
// endpoint, with the server's credentials (read at every call, so rotated
// ones take effect) and the given timeouts in seconds. Clients are built
// once, at provision.
func (h *Handler) newServerBucket(connectSec, readSec int64) (*oss.Bucket, error) {
	opts := []oss.ClientOption{
		oss.SetCredentialsProvider(sdkCredentials{h.creds}),
		oss.Region(h.Region),
		oss.Timeout(connectSec, readSec),
	}
	if h.SignatureVersion == sigV4 {
		opts = append(opts, oss.AuthVersion(oss.AuthV4))
	}
	client, err := oss.New(h.Endpoint, "", "", opts...)
	if err != nil {
		return nil, fmt.Errorf("oss client: %w", err)
	}
	return client.Bucket(h.Bucket)
}

// sdkCredentials hands the server's current credentials to the SDK on
// every call, so rotated credentials take effect without a new client.
type sdkCredentials struct{ src *credentialSource }

func (p sdkCredentials) GetCredentials() oss.Credentials {
	c, _ := p.src.get()
	return ossCreds(c)
}

func (p sdkCredentials) GetCredentialsE() (oss.Credentials, error) {
	c, err := p.src.get()
	return ossCreds(c), err
}
