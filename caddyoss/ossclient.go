package caddyoss

import (
	"fmt"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// newServerBucket builds a client for server-side OSS calls at the
// endpoint, with the server's credentials (read at every call, so rotated
// ones take effect) and the given timeouts in seconds. Clients are built
// once, at provision.
func (h *Handler) newServerBucket(connectSec, readSec int64) (*oss.Bucket, error) {
	opts := []oss.ClientOption{
		oss.SetCredentialsProvider(h.creds),
		oss.Region(h.Region),
		oss.Timeout(connectSec, readSec),
	}
	if h.SignatureVersion == osssign.V4 {
		opts = append(opts, oss.AuthVersion(oss.AuthV4))
	}
	client, err := oss.New(h.Endpoint, "", "", opts...)
	if err != nil {
		return nil, fmt.Errorf("oss client: %w", err)
	}
	return client.Bucket(h.Bucket)
}
