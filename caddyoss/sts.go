package caddyoss

import (
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/sts"
)

// newSTSBroker builds the STS route's AssumeRole broker from cfg, which has
// its defaults applied, counting in the handler's metrics. cred is the
// server's own credential.
func newSTSBroker(cfg STSConfig, region string, cred credentials.Credential, logger *zap.Logger) (*sts.Broker, error) {
	return sts.New(cfg.brokerConfig(), region, cred, logger, ossMetrics.stsBroker)
}

// brokerConfig is the broker's config of s.
func (s STSConfig) brokerConfig() sts.Config {
	return sts.Config{
		RoleARN:       s.RoleARN,
		ExternalID:    s.ExternalID,
		Duration:      time.Duration(s.Duration),
		RefreshBefore: time.Duration(s.RefreshBefore),
		CacheSize:     s.CacheSize,
		Endpoint:      s.Endpoint,
	}
}
