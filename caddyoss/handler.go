package caddyoss

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
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
	h.v4Keys = new(v4KeyCache)
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
		h.SignatureVersion = sigV4
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
	h.uploadURLPlain = jsonPlainBytes([]byte(h.uploadURL))

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

// Validate checks the configuration; every message names the field.
// UnmarshalCaddyfile runs the same checks where a Caddyfile can, so that
// `caddy adapt` reports them with the file and line.
func (h *Handler) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if h.signingEnabled() {
		if h.Bucket == "" {
			add("bucket is required")
		} else {
			check(checkBucket(h.Bucket))
		}
		if h.Region == "" {
			add("region is required")
		} else {
			check(checkRegion(h.Region))
		}
	}
	if (h.AccessKeyID == "") != (h.AccessKeySecret == "") {
		add("access_key_id and access_key_secret must be set together")
	}
	if h.SignatureVersion != sigV4 && h.SignatureVersion != sigV1 && h.SignatureVersion != "" {
		add("signature_version: must be v4 or v1, got %q", h.SignatureVersion)
	}
	if h.MinSize < 0 || h.MaxSize < 0 {
		add("min_size and max_size must not be negative")
	}
	check(checkSizes(h.MinSize, h.MaxSize))
	for _, t := range h.AllowTypes {
		check(validTypePattern(t))
	}
	check(checkDefaultType(h.DefaultType, h.AllowTypes))
	check(checkPresignFormat(h.PresignFormat))
	// The prefix's own text, placeholders aside; what they expand to is
	// checked per request.
	if static := placeholderRE.ReplaceAllString(h.KeyPrefix, "x"); static != "" {
		if err := checkKeyPart(static); err != nil {
			add("key_prefix: %q %v", h.KeyPrefix, err)
		} else if err := checkExpanded(static); err != nil {
			add("key_prefix: %q %v, which OSS or RAM would read as a wildcard or reference", h.KeyPrefix, err)
		}
	}
	if _, err := callback.NewScope(h.KeyPrefix); err != nil {
		check(err)
	}
	if err := checkKeyTemplate(h.KeyTemplate); err != nil {
		check(err)
	} else if h.KeyTemplate != "" && !h.KeyTemplateOverwrite && !templateHasID(h.KeyTemplate) {
		add("key_template: %q has no {id}, so uploads could share a key and overwrite each other; add {id}, or set key_template_overwrite to allow it", h.KeyTemplate)
	}
	if _, ok := canonicalStorageClass(h.StorageClass); h.StorageClass != "" && !ok {
		add("storage_class: must be Standard, IA, Archive, ColdArchive or DeepColdArchive, got %q", h.StorageClass)
	}
	if h.Expires != 0 {
		check(checkExpires(time.Duration(h.Expires)))
	}
	for _, u := range []struct{ name, val string }{{"endpoint", h.Endpoint}, {"upload_url", h.UploadURL}} {
		if u.val == "" {
			continue
		}
		if p, err := url.Parse(u.val); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			add("%s: %q must be an absolute http or https URL", u.name, u.val)
		}
	}
	routes := h.routes()
	for i, r := range routes {
		check(checkRoutePath(r.name, r.path))
		check(checkDuplicateRoute(routes[:i], r))
	}
	check(checkUppyPath(h.UppyPath, routes))
	if h.STSPath != routeOff && h.STSPath != "" {
		if h.STS == nil || h.STS.RoleARN == "" {
			add("sts.role_arn is required when the sts route is on (set sts_path off to disable it)")
		}
	}
	if s := h.STS; s != nil {
		if s.RoleARN != "" && !strings.HasPrefix(s.RoleARN, "acs:ram::") {
			add("sts.role_arn: %q is not a RAM role ARN (acs:ram::<account>:role/<name>)", s.RoleARN)
		}
		if s.Duration != 0 {
			check(checkSTSDuration(time.Duration(s.Duration)))
		}
		check(checkRefreshBefore(time.Duration(s.RefreshBefore), time.Duration(s.Duration)))
		if s.CacheSize < 0 {
			add("sts.cache_size: must not be negative")
		}
		if s.ExternalID != "" && (len(s.ExternalID) < 2 || len(s.ExternalID) > 1224) {
			add("sts.external_id: must be 2 to 1224 characters")
		}
	}
	if h.CallbackPath != routeOff && h.CallbackPath != "" && h.Callback == nil {
		add("callback_path is set but there is no callback block")
	}
	if c := h.Callback; c != nil {
		if c.BodyType != "" && c.BodyType != bodyTypeForm && c.BodyType != bodyTypeJSON {
			add("callback.body_type: must be form or json, got %q", c.BodyType)
		}
		if c.MaxBody < 0 {
			add("callback.max_body: must not be negative")
		}
		if c.Delivery != "" && c.Delivery != deliveryModeQueued && c.Delivery != deliveryModeDirect {
			add("callback.delivery: must be queued or direct, got %q", c.Delivery)
		}
		if d := time.Duration(c.AnswerWithin); d != 0 && (d < 100*time.Millisecond || d > 4500*time.Millisecond) {
			add("callback.answer_within: must be between 100ms and 4.5s (OSS waits 5s), got %s", d)
		}
		if d := time.Duration(c.RetryFor); d < 0 || d > 30*24*time.Hour {
			add("callback.retry_for: must be between 0 and 30 days, got %s", d)
		}
		for name := range c.Vars {
			if !callbackVarName.MatchString(name) {
				add("callback.var: name %q must be lower-case letters, digits or '_'", name)
			} else if name == bindingVar {
				add("callback.var: the name %q is reserved for the binding", name)
			}
		}
		if c.URL == "" && c.Host != "" {
			add("callback.url is required when callback host is set")
		}
		if !c.VerifyOnly {
			if _, _, err := c.effectiveBody(); err != nil {
				errs = append(errs, err)
			}
			if h.CallbackPath != routeOff && (h.Bucket == "" || h.Region == "") {
				add("bucket and region are required to check callback bindings and confirm them with OSS (set callback verify_only to accept any genuine callback)")
			}
			if c.BindingKey != "" && len(c.BindingKey) < minBindingKeyBytes {
				add("callback.binding_key: must be at least %d characters", minBindingKeyBytes)
			}
		}
		if c.URL != "" {
			if _, err := c.callbackParam(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// route is one of the handler's routes by its config name.
type route struct{ name, path string }

// routes lists the four route paths by their config names.
func (h *Handler) routes() []route {
	return []route{
		{"sts_path", h.STSPath}, {"policy_path", h.PolicyPath},
		{"presign_path", h.PresignPath}, {"callback_path", h.CallbackPath},
	}
}

// The checks below are shared by Validate and UnmarshalCaddyfile; each
// message names the field.

// checkBucket checks a bucket name that has no placeholder left.
func checkBucket(b string) error {
	if !validBucketName(b) {
		return fmt.Errorf("bucket: %q is not a valid OSS bucket name (3-63 lower-case letters, digits and '-')", b)
	}
	return nil
}

// checkRegion refuses the endpoint form of a region id.
func checkRegion(r string) error {
	if strings.HasPrefix(r, "oss-") {
		return fmt.Errorf("region: use the region id (%q), not %q", strings.TrimPrefix(r, "oss-"), r)
	}
	return nil
}

// checkSizes checks max_size against the OSS limit and min_size against
// max_size (0 means no maximum).
func checkSizes(minSize, maxSize int64) error {
	if maxSize > maxObjectSize {
		return fmt.Errorf("max_size: %d exceeds the OSS limit of 5 GiB", maxSize)
	}
	if maxSize > 0 && minSize > maxSize {
		return fmt.Errorf("min_size (%d) is greater than max_size (%d)", minSize, maxSize)
	}
	return nil
}

// checkExpires checks the lifetime of policies and presigned URLs.
func checkExpires(d time.Duration) error {
	if d < time.Second || d > maxExpires {
		return fmt.Errorf("expires: must be between 1s and 7 days, got %s", d)
	}
	return nil
}

// checkSTSDuration checks the lifetime of STS credentials.
func checkSTSDuration(d time.Duration) error {
	if d < 15*time.Minute || d > 12*time.Hour {
		return fmt.Errorf("sts.duration: must be between 15m and 12h, got %s", d)
	}
	return nil
}

// checkRefreshBefore checks refresh_before against the credentials'
// duration (0: not known yet).
func checkRefreshBefore(rb, dur time.Duration) error {
	if rb < 0 {
		return fmt.Errorf("sts.refresh_before: must not be negative, got %s", rb)
	}
	if dur != 0 && rb >= dur {
		return fmt.Errorf("sts.refresh_before: must be shorter than sts.duration (%s), got %s", dur, rb)
	}
	return nil
}

// checkRoutePath checks a route path that is on. Paths are literal: they
// are compared with the request path as they are.
func checkRoutePath(name, p string) error {
	if p == "" || p == routeOff {
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s: %q must start with '/'", name, p)
	}
	return nil
}

// checkDuplicateRoute refuses a route path that one of others already uses.
func checkDuplicateRoute(others []route, r route) error {
	if r.path == "" || r.path == routeOff {
		return nil
	}
	for _, o := range others {
		if o.name != r.name && o.path == r.path {
			return fmt.Errorf("%s and %s are both %q", o.name, r.name, r.path)
		}
	}
	return nil
}

// placeholderRE matches a Caddy placeholder such as {http.auth.user.id}.
var placeholderRE = regexp.MustCompile(`\{[^{}$]+\}`)

// validBucketName checks OSS's naming rules: 3–63 characters of lower-case
// letters, digits and '-', not starting or ending with '-'.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 || b[0] == '-' || b[len(b)-1] == '-' {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
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
	creds  creds
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
