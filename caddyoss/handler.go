package caddyoss

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// Defaults.
const (
	defaultExpires       = 15 * time.Minute
	defaultSTSPath       = "/oss/sts"
	defaultPolicyPath    = "/oss/post-policy"
	defaultPresignPath   = "/oss/presign"
	defaultCallbackPath  = "/oss/callback"
	defaultUppyPath      = "/oss/uppy"
	defaultSessionName   = "caddy-oss"
	defaultSTSDuration   = time.Hour
	defaultRefreshBefore = 5 * time.Minute
	defaultSTSCacheSize  = 1024
	defaultAnswerWithin  = 4 * time.Second
	defaultRetryFor      = 24 * time.Hour
	routeOff             = "off"

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
	h.PolicyPath = routePath(h.PolicyPath, defaultPolicyPath, true)
	h.PresignPath = routePath(h.PresignPath, defaultPresignPath, true)
	h.STSPath = routePath(h.STSPath, defaultSTSPath, h.STS != nil)
	h.CallbackPath = routePath(h.CallbackPath, defaultCallbackPath, h.Callback != nil)
	// Uppy sends small files by PostObject: its routes follow the policy
	// route unless set, so a verifier-only site signs nothing.
	h.UppyPath = routePath(h.UppyPath, defaultUppyPath, h.PolicyPath != routeOff)
	if h.Endpoint == "" && h.Region != "" {
		h.Endpoint = "https://oss-" + h.Region + ".aliyuncs.com"
	}
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
		if s.Duration == 0 {
			s.Duration = caddy.Duration(defaultSTSDuration)
		}
		if s.RefreshBefore == 0 {
			s.RefreshBefore = caddy.Duration(defaultRefreshBefore)
		}
		if s.Endpoint == "" && h.Region != "" {
			s.Endpoint = "sts." + h.Region + ".aliyuncs.com"
		}
		if s.CacheSize == 0 {
			s.CacheSize = defaultSTSCacheSize
		}
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

	// Bound callbacks are confirmed with OSS, which needs credentials too.
	boundCallbacks := h.CallbackPath != routeOff && !h.Callback.VerifyOnly
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
		if !c.VerifyOnly {
			h.bindingKeys = h.newBindingKeySource()
		}
		if c.URL != "" {
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
	h.logStartup()
	return nil
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

// signingEnabled reports whether any signing route is on.
func (h *Handler) signingEnabled() bool {
	// An unset uppy_path (before Provision) follows policy_path.
	uppy := h.UppyPath != routeOff && (h.UppyPath != "" || h.PolicyPath != routeOff)
	return h.PolicyPath != routeOff || h.PresignPath != routeOff || h.STSPath != routeOff || uppy
}

// ServeHTTP answers the signing and callback routes and passes every other
// request to the next handler untouched.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if retry, err := h.serveRetry(w, r, next); retry {
		return err
	}
	stripVerifiedHeader(r.Header)
	switch p := r.URL.Path; {
	case h.uppyPrefix != "" && strings.HasPrefix(p, h.uppyPrefix):
		return h.serveUppyRoute(w, r, p[len(h.uppyPrefix):])
	case p == h.PolicyPath:
		return h.serveSigning(w, r, h.servePostPolicy, signRoutePostPolicy)
	case p == h.PresignPath:
		return h.serveSigning(w, r, h.servePresign, signRoutePresign)
	case p == h.STSPath:
		return h.serveSigning(w, r, h.serveSTS, signRouteSTS)
	case h.isCallbackRequest(r):
		return h.serveCallbackRoute(w, r, next)
	default:
		return next.ServeHTTP(w, r)
	}
}

// serveSigning runs one of the GET signing routes, counts it under name
// and renders its error. The routes are separate functions, each with only
// its own locals on the stack: a request's stack then stays within the
// size the connection's goroutine already has.
func (h *Handler) serveSigning(w http.ResponseWriter, r *http.Request, route func(http.ResponseWriter, *http.Request) error, name string) error {
	start := time.Now()
	var err error
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		err = methodNotAllowed(w, r)
	} else {
		err = route(w, r)
	}
	observeSign(name, start, err)
	if err != nil {
		return renderError(w, r, err)
	}
	return nil
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Allow", "GET, HEAD")
	return caddyhttp.Error(http.StatusMethodNotAllowed,
		fmt.Errorf("method %s is not allowed; use GET", r.Method))
}

func (h *Handler) serveUppyRoute(w http.ResponseWriter, r *http.Request, rest string) error {
	start := time.Now()
	err := h.serveUppy(w, r, rest)
	observeSign(signRouteUppy, start, err)
	if err != nil {
		return renderError(w, r, err)
	}
	return nil
}

func (h *Handler) serveCallbackRoute(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var nextCalled bool
	err := h.serveCallback(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		nextCalled = true
		return next.ServeHTTP(w, r)
	}))
	if err != nil && !nextCalled {
		return renderError(w, r, err)
	}
	return err
}

// upload is what every signing route decides before it signs.
type upload struct {
	prefix string
	key    string
	hints  uploadHints
	creds  osssign.Credentials
	custom map[string]string // expanded custom callback variables by name
}

// prepareUpload checks the client's hints, decides the object key and gets
// the signing credentials, into up. w is only for the Retry-After of a 503.
func (h *Handler) prepareUpload(w http.ResponseWriter, r *http.Request, up *upload) error {
	var err error
	if up.hints, err = h.parseHints(r, r.URL.Path == h.PresignPath); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	repl := replacer(r)
	if up.prefix, err = h.keyPrefix(repl); err != nil {
		return h.forbidden(r, err)
	}
	if up.key, err = h.objectKey(repl, up.prefix, up.hints.filename); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	if h.callbackB64 != "" {
		if up.custom, err = h.Callback.callbackVars(repl); err != nil {
			return h.forbidden(r, err)
		}
	}
	if up.creds, err = h.creds.get(); err != nil {
		return h.credentialsUnavailable(w, r, err)
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
