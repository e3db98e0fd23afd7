package caddyoss

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// Defaults.
const (
	defaultExpires      = 15 * time.Minute
	defaultSTSPath      = "/oss/sts"
	defaultPolicyPath   = "/oss/post-policy"
	defaultPresignPath  = "/oss/presign"
	defaultCallbackPath = "/oss/callback"
	defaultUppyPath     = "/oss/uppy"
	defaultSessionName  = "caddy-oss"
	defaultAnswerWithin = 4 * time.Second
	defaultRetryFor     = 24 * time.Hour
	routeOff            = "off"

	// maxExpires is the longest lifetime OSS accepts for a V4 presigned URL.
	maxExpires = 7 * 24 * time.Hour
)

// Provision expands {env.*} placeholders, applies defaults, builds the
// clients the routes share and logs one startup line. When a route needs
// credentials and no key pair is configured, it asks the default
// credential chain once (within credentialResolveTimeout), so that a
// server without credentials fails at load; that is its only network I/O.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	registerMetrics(ctx.GetMetricsRegistry(), h.logger)
	if h.storage == nil {
		h.storage = ctx.Storage()
	}
	h.signer = new(osssign.Signer)
	if h.now == nil {
		h.now = time.Now
	}
	repl := caddy.NewReplacer()
	for _, f := range []*string{
		&h.Bucket, &h.Region, &h.Endpoint, &h.UploadURL,
		&h.AccessKeyID, &h.AccessKeySecret, &h.SignatureVersion,
	} {
		*f = repl.ReplaceKnown(*f, "")
	}
	// key_prefix keeps request placeholders; only global ones expand here.
	h.KeyPrefix = repl.ReplaceKnown(h.KeyPrefix, "")
	h.keyPrefixTpl = newRequestTemplate(h.KeyPrefix)

	h.SignatureVersion = strings.ToLower(h.SignatureVersion)
	if h.SignatureVersion == "" {
		h.SignatureVersion = osssign.V4
	}
	if h.Expires == 0 {
		h.Expires = caddy.Duration(defaultExpires)
	}
	if h.StorageClass == "" {
		h.StorageClass = defaultStorageClass
	} else if c, ok := canonicalStorageClass(h.StorageClass); ok {
		h.StorageClass = c
	}
	h.applyRouteDefaults()
	h.uploadURL = strings.TrimSuffix(h.UploadURL, "/")
	if h.uploadURL == "" && h.Endpoint != "" && h.Bucket != "" {
		u, err := url.Parse(h.Endpoint)
		if err != nil || u.Host == "" {
			return fmt.Errorf("endpoint: %q is not an absolute URL", h.Endpoint)
		}
		h.uploadURL = u.Scheme + "://" + h.Bucket + "." + u.Host
	}
	h.uploadURLPlain = jsonw.Plain([]byte(h.uploadURL))

	if h.STS != nil {
		s := h.STS
		s.RoleARN = repl.ReplaceKnown(s.RoleARN, "")
		s.ExternalID = repl.ReplaceKnown(s.ExternalID, "")
		s.Endpoint = repl.ReplaceKnown(s.Endpoint, "")
		s.SessionName = repl.ReplaceKnown(s.SessionName, "")
		if s.SessionName == "" {
			s.SessionName = defaultSessionName
		}
		// The broker's defaults, written back for the startup line and
		// the adapted config.
		d := s.brokerConfig().WithDefaults(h.Region)
		s.Duration, s.RefreshBefore = caddy.Duration(d.Duration), caddy.Duration(d.RefreshBefore)
		s.CacheSize, s.Endpoint = d.CacheSize, d.Endpoint
	}
	if h.Callback != nil {
		c := h.Callback
		c.URL = repl.ReplaceKnown(c.URL, "")
		c.Host = repl.ReplaceKnown(c.Host, "")
		c.BindingKey = repl.ReplaceKnown(c.BindingKey, "")
		c.Delivery = strings.ToLower(c.Delivery)
		if c.Delivery == "" {
			c.Delivery = deliveryModeQueued
		}
		if c.AnswerWithin == 0 {
			c.AnswerWithin = caddy.Duration(defaultAnswerWithin)
		}
		if c.RetryFor == 0 {
			c.RetryFor = caddy.Duration(defaultRetryFor)
		}
		c.BodyType = strings.ToLower(c.BodyType)
		if c.BodyType == "" {
			c.BodyType = bodyTypeForm
		}
	}

	// Validate before building anything, so errors name the field.
	if err := h.Validate(); err != nil {
		return err
	}
	h.scope, _ = callback.NewScope(h.KeyPrefix) // Validate checked it
	callbackURL := ""
	if h.Callback != nil {
		callbackURL = h.Callback.URL
	}
	h.id = callback.HandlerID(h.Bucket, h.KeyPrefix, h.CallbackPath, callbackURL)

	// Bound callbacks and confirms are checked with OSS, which needs
	// credentials too.
	boundCallbacks := (h.CallbackPath != routeOff || h.confirmOn()) && !h.Callback.VerifyOnly
	if h.signingEnabled() || boundCallbacks {
		src, err := newCredentialSource(h.AccessKeyID, h.AccessKeySecret)
		if err != nil {
			return err
		}
		if err := src.resolve(ctx, credentialResolveTimeout); err != nil {
			return err
		}
		h.creds = src
	}
	if c := h.Callback; c != nil {
		body, tpl, err := c.effectiveBody()
		if err != nil {
			return err
		}
		c.renderedBody, h.bodyTpl = body, tpl
		h.quotaTpl = c.otherQuotaTemplate()
		if !c.VerifyOnly {
			h.bindingKeys = h.newKeySource()
		}
		if c.URL != "" && !c.ConfirmOnly {
			if h.callbackB64, err = c.callbackParam(); err != nil {
				return err
			}
		}
	}
	if boundCallbacks {
		b, err := h.newOSSBucket()
		if err != nil {
			return err
		}
		h.ossBucket = b
	}
	if err := h.provisionUppy(); err != nil {
		return err
	}
	if h.STSPath != routeOff {
		cred, err := h.creds.credential()
		if err != nil {
			return err
		}
		if h.sts, err = newSTSBroker(*h.STS, h.Region, cred, h.logger); err != nil {
			return err
		}
	}
	if err := h.provisionCallback(ctx); err != nil {
		return err
	}
	if err := h.provisionQuota(ctx); err != nil {
		return err
	}
	h.logStartup()
	return nil
}

// applyRouteDefaults gives each route its default path (or off) and the
// endpoint its region's default.
func (h *Handler) applyRouteDefaults() {
	h.PolicyPath = routePath(h.PolicyPath, defaultPolicyPath, true)
	h.PresignPath = routePath(h.PresignPath, defaultPresignPath, true)
	h.STSPath = routePath(h.STSPath, defaultSTSPath, h.STS != nil)
	h.CallbackPath = routePath(h.CallbackPath, defaultCallbackPath, h.Callback != nil)
	h.ConfirmPath = routePath(h.ConfirmPath, "", false) // off unless set
	// Uppy sends small files by PostObject: its routes follow the policy
	// route unless set, so a verifier-only site signs nothing.
	h.UppyPath = routePath(h.UppyPath, defaultUppyPath, h.PolicyPath != routeOff)
	if h.Endpoint == "" && h.Region != "" {
		h.Endpoint = "https://oss-" + h.Region + ".aliyuncs.com"
	}
}

// routePath applies a route's default; a route whose block is missing is
// off unless its path was set explicitly (which Validate then rejects).
func routePath(p, def string, enabled bool) string {
	switch {
	case p != "":
		return p
	case enabled:
		return def
	default:
		return routeOff
	}
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// Cleanup stops the callback route: its queue (the next config's queue
// takes its records over), its events and the verifier's idle connections.
func (h *Handler) Cleanup() error {
	if h.callback != nil {
		h.callback.cleanup()
	}
	if h.quota != nil {
		h.quota.cleanup()
	}
	return nil
}

// logStartup writes the handler's one startup line: what is on and where
// the credentials come from. It never logs a key, secret or token.
func (h *Handler) logStartup() {
	h.logger.Info("oss_upload configured", h.startupFields()...)
}

// startupFields are the fields of the startup line:
//
//   - bucket, region, signature_version;
//   - routes: each route that is on, by name (sts, policy, presign,
//     callback, confirm, uppy), with its path;
//   - callbacks: "bound" (only callbacks carrying this site's binding are
//     accepted), "confirm_only" (signing answers ask OSS for no callback:
//     uploads come through the confirm route), "verify_only", or "off"
//     without a callback block;
//   - delivery: how verified callbacks reach the upstream ("queued",
//     "direct"), "off" without a callback or confirm route;
//   - handler_id: with a callback or confirm route, the id that names the
//     handler's events (in storage, the admin API and
//     caddy_oss_callback_queue_dead);
//   - dead_events: how many of its events are dead, when there are any;
//   - credentials: "static" (the key pair in the config), "environment",
//     "oidc", "cli_profile", "credentials_file", "ecs_ram_role",
//     "credentials_uri" or "default_chain:<provider>" (see
//     credentialOrigin), or "unused" when no route needs them;
//   - form_fields: "minimal" when set (PostObject policies then pin
//     neither the ACL nor the storage class); absent otherwise.
func (h *Handler) startupFields() []zap.Field {
	routes := zapcore.ObjectMarshalerFunc(func(enc zapcore.ObjectEncoder) error {
		for _, r := range []struct{ name, path string }{
			{"sts", h.STSPath}, {"policy", h.PolicyPath},
			{"presign", h.PresignPath}, {"callback", h.CallbackPath},
			{"confirm", h.ConfirmPath}, {"uppy", h.UppyPath},
		} {
			if r.path != routeOff {
				enc.AddString(r.name, r.path)
			}
		}
		return nil
	})
	callbacks := "off"
	if c := h.Callback; c != nil {
		switch {
		case c.VerifyOnly:
			callbacks = "verify_only"
		case c.ConfirmOnly:
			callbacks = "confirm_only"
		default:
			callbacks = "bound"
		}
	}
	delivery := "off"
	if h.delivers() {
		delivery = h.Callback.Delivery
	}
	origin := "unused"
	if h.creds != nil {
		origin = h.creds.origin
	}
	fields := []zap.Field{
		zap.String("bucket", h.Bucket),
		zap.String("region", h.Region),
		zap.Object("routes", routes),
		zap.String("signature_version", h.SignatureVersion),
		zap.String("callbacks", callbacks),
		zap.String("delivery", delivery),
		zap.String("credentials", origin),
	}
	if h.delivers() {
		fields = append(fields, zap.String("handler_id", h.id))
		if n := h.deadAtStartup(); n > 0 {
			fields = append(fields, zap.Int("dead_events", n))
		}
	}
	if q := h.Quota; q != nil {
		fields = append(fields, zap.Object("quota", zapcore.ObjectMarshalerFunc(func(enc zapcore.ObjectEncoder) error {
			enc.AddString("key", h.quotaKeyText())
			for _, l := range []struct {
				name string
				n    int64
			}{{"bytes", q.Bytes}, {"uploads", q.Uploads}, {"pending", q.Pending}} {
				if l.n > 0 {
					enc.AddInt64(l.name, l.n)
				}
			}
			enc.AddString("window", h.quota.ledger.Window().String())
			return nil
		})))
	}
	if h.FormFields == formFieldsMinimal {
		// PostObject policies pin neither the ACL nor the storage class.
		fields = append(fields, zap.String("form_fields", formFieldsMinimal))
	}
	return fields
}

// delivers reports whether verified uploads reach the app through this
// handler: by the callback route, the confirm route or both.
func (h *Handler) delivers() bool {
	return h.CallbackPath != routeOff || h.confirmOn()
}

// newKeySource is the binding key source of the config: callback
// binding_key when set, else the key kept in Caddy's storage.
func (h *Handler) newKeySource() *callback.KeySource {
	var static []byte
	if c := h.Callback; c != nil && c.BindingKey != "" {
		static = []byte(c.BindingKey)
	}
	return callback.NewKeySource(static, h.storage, h.id)
}
