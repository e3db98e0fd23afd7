package caddyoss

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// Validate checks the configuration; every message names the field.
// UnmarshalCaddyfile runs the same checks where a Caddyfile can, so that
// `caddy adapt` reports them with the file and line.
func (h *Handler) Validate() error {
	if h.Callback != nil {
		h.Callback.quota = h.Quota != nil // the body carries the quota's variables
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if h.signingEnabled() {
		if h.Bucket == "" {
			errs = append(errs, h.missing("bucket"))
		} else {
			check(checkBucket(h.Bucket))
		}
		if h.Region == "" {
			errs = append(errs, h.missing("region"))
		}
	}
	if h.Region != "" && !strings.Contains(h.Region, "{") {
		check(checkRegionID(h.Region, h.RegionUnlisted))
	}
	switch {
	case h.AccessKeyID == "" && h.AccessKeySecret != "":
		errs = append(errs, h.missing("access_key_id", "access_key_id and access_key_secret must be set together"))
	case h.AccessKeyID != "" && h.AccessKeySecret == "":
		errs = append(errs, h.missing("access_key_secret", "access_key_id and access_key_secret must be set together"))
	}
	if h.SignatureVersion != osssign.V4 && h.SignatureVersion != osssign.V1 && h.SignatureVersion != "" {
		add("signature_version: must be v4 or v1, got %q", h.SignatureVersion)
	}
	if h.MinSize < 0 || h.MaxSize < 0 {
		add("min_size and max_size must not be negative")
	}
	check(checkSizes(h.MinSize, h.MaxSize))
	for _, t := range h.AllowTypes {
		if err := validTypePattern(t); err != nil {
			check(err)
		} else {
			check(checkTypeSpelling("allow_types", t))
		}
	}
	if err := checkDefaultType(h.DefaultType, h.AllowTypes); err != nil {
		check(err)
	} else {
		check(checkTypeSpelling("default_type", h.DefaultType))
	}
	check(checkFormFields(h.FormFields, h.configuredStorageClass(), h.AllowTypes))
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
		} else {
			check(checkEndpointRegion(u.name, u.val, h.Region, h.Bucket))
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
			errs = append(errs, h.missing("sts.role_arn", "sts.role_arn is required when the sts route is on (set sts_path off to disable it)"))
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
	check(h.checkConfirm())
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
			errs = append(errs, h.missing("callback.url", "callback.url is required when callback host is set"))
		} else if c.URL == "" && !c.VerifyOnly && h.signingConfigured() {
			errs = append(errs, h.missing("callback.url", errCallbackURL))
		}
		if !c.VerifyOnly {
			if _, _, err := c.effectiveBody(); err != nil {
				errs = append(errs, err)
			}
			if (h.CallbackPath != routeOff || h.confirmOn()) && (h.Bucket == "" || h.Region == "") {
				add("bucket and region are required to check callback bindings and confirm them with OSS (set callback verify_only to accept any genuine callback)")
			}
			if h.confirmOn() {
				check(checkConfirmBody(c))
			}
			if c.BindingKey != "" && len(c.BindingKey) < callback.MinKeyBytes {
				add("callback.binding_key: must be at least %d characters", callback.MinKeyBytes)
			}
		}
		if c.URL != "" {
			if _, err := c.callbackParam(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, h.validateQuota()...)
	return errors.Join(errs...)
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

// checkSizes checks max_size against the OSS limit and min_size against
// max_size (0 means no maximum).
func checkSizes(minSize, maxSize int64) error {
	if maxSize > osssign.MaxObjectSize {
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

// Form field modes (Handler.FormFields).
const (
	formFieldsFull    = "full"
	formFieldsMinimal = "minimal"
)

// checkFormFields checks form_fields and refuses, with minimal, the
// options whose pins need form fields a minimal form does not send.
// storageClass is the class as configured ("" when not set).
func checkFormFields(mode, storageClass string, allowTypes []string) error {
	switch mode {
	case "", formFieldsFull:
		return nil
	case formFieldsMinimal:
	default:
		return fmt.Errorf("form_fields: must be full or minimal, got %q", mode)
	}
	if storageClass != "" {
		return fmt.Errorf("form_fields minimal: storage_class %s would need the form to send x-oss-storage-class, which minimal does not ask for; remove storage_class and set the bucket's default storage class to %s instead, or use form_fields full",
			storageClass, storageClass)
	}
	if len(allowTypes) > 0 {
		return fmt.Errorf("form_fields minimal: allow_types (%s) would need the form to send Content-Type and x-oss-content-type, which minimal does not ask for, so OSS could not enforce it; remove allow_types, or use form_fields full",
			strings.Join(allowTypes, ", "))
	}
	return nil
}

// configuredStorageClass is storage_class as the configuration wrote it,
// "" when not set (Provision fills in the default).
func (h *Handler) configuredStorageClass() string {
	if h.configured != nil {
		return h.configured.storageClass
	}
	if h.StorageClass == defaultStorageClass {
		return "" // a handler built in Go after Provision: the default, or set to it
	}
	return h.StorageClass
}

// configuredText is what Validate needs of the configuration as written,
// before Provision expanded placeholders and applied defaults.
type configuredText struct {
	// placeholders holds the text of each field with a placeholder, by
	// config name (bucket, sts.role_arn, callback.url, ...).
	placeholders map[string]string
	storageClass string
}

// configuredText records h's fields as written.
func (h *Handler) configuredText() *configuredText {
	c := &configuredText{placeholders: map[string]string{}, storageClass: h.StorageClass}
	add := func(name, v string) {
		if strings.Contains(v, "{") {
			c.placeholders[name] = v
		}
	}
	add("bucket", h.Bucket)
	add("region", h.Region)
	add("endpoint", h.Endpoint)
	add("upload_url", h.UploadURL)
	add("access_key_id", h.AccessKeyID)
	add("access_key_secret", h.AccessKeySecret)
	if s := h.STS; s != nil {
		add("sts.role_arn", s.RoleARN)
	}
	if cb := h.Callback; cb != nil {
		add("callback.url", cb.URL)
	}
	return c
}

// errCallbackURL is the error for a callback block without url while the
// signing routes are on.
const errCallbackURL = "callback.url is required: without it the signing routes ask OSS for no callback, so the callback route waits for callbacks this site never issues; " +
	"set url (e.g. https://<site>/oss/callback), or, for an instance that only verifies callbacks, set policy_path, presign_path, sts_path and uppy_path off"

// missing is the error for a required field left empty. When the
// configuration wrote placeholders there that expanded to nothing, it
// names them and the environment variables to set; otherwise it is msg,
// by default "<name> is required".
func (h *Handler) missing(name string, msg ...string) error {
	if h.configured != nil {
		if raw := h.configured.placeholders[name]; raw != "" {
			return emptyExpansion(name, raw)
		}
	}
	if len(msg) > 0 {
		return errors.New(msg[0])
	}
	return fmt.Errorf("%s is required", name)
}

// envPlaceholder matches {env.NAME}.
var envPlaceholder = regexp.MustCompile(`\{env\.([^{}]+)\}`)

// emptyExpansion says that name's placeholders expanded to nothing.
func emptyExpansion(name, raw string) error {
	var vars []string
	for _, m := range envPlaceholder.FindAllStringSubmatch(raw, -1) {
		vars = append(vars, m[1])
	}
	if len(vars) == 0 {
		return fmt.Errorf("%s is empty: %s expanded to an empty string", name, raw)
	}
	return fmt.Errorf("%s is empty: %s expanded to an empty string; set %s", name, raw, strings.Join(vars, " and "))
}

// signingConfigured reports whether a signing route is on, before or
// after Provision resolved the paths: an unset path is on by default,
// except sts_path without an sts block.
func (h *Handler) signingConfigured() bool {
	sts := h.STSPath != routeOff && (h.STSPath != "" || h.STS != nil)
	uppy := h.UppyPath != routeOff && (h.UppyPath != "" || h.PolicyPath != routeOff)
	return h.PolicyPath != routeOff || h.PresignPath != routeOff || sts || uppy
}
