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
	return sts.New(sts.Config{
		RoleARN:       cfg.RoleARN,
		ExternalID:    cfg.ExternalID,
		Duration:      time.Duration(cfg.Duration),
		RefreshBefore: time.Duration(cfg.RefreshBefore),
		CacheSize:     cfg.CacheSize,
		Endpoint:      cfg.Endpoint,
	}, region, cred, logger, ossMetrics.stsBroker)
}
