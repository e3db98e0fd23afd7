// Package caddyoss is a Caddy HTTP handler that lets browsers and apps upload
// files directly to Alibaba Cloud OSS. It answers the signing routes (STS
// temporary credentials, PostObject policies, presigned PUT URLs) and verifies
// OSS upload callbacks before they reach the upstream application.
package caddyoss

import (
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/sts"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the oss_upload HTTP handler.
type Handler struct {
	// Bucket is the OSS bucket uploads go to. Required.
	Bucket string `json:"bucket,omitempty"`

	// Region is the OSS region id, e.g. "cn-hangzhou". Required. An id
	// that OSS's region list does not have is refused at load, with the
	// closest listed id, unless RegionUnlisted is set.
	Region string `json:"region,omitempty"`

	// RegionUnlisted accepts a Region that is not in the plugin's list of
	// OSS regions, for a region OSS opened after this release. Default:
	// false.
	RegionUnlisted bool `json:"region_unlisted,omitempty"`

	// Endpoint is the OSS endpoint the server signs for. An OSS endpoint
	// host of another region (oss-<other>[-internal].aliyuncs.com) is
	// refused; custom domains and the accelerate endpoints are not checked.
	// Default: https://oss-<region>.aliyuncs.com
	Endpoint string `json:"endpoint,omitempty"`

	// UploadURL is where browsers send the bytes.
	// Default: https://<bucket>.oss-<region>.aliyuncs.com
	UploadURL string `json:"upload_url,omitempty"`

	// AccessKeyID and AccessKeySecret are the server's AccessKey pair.
	// {env.*} placeholders are expanded at provision. When both are empty,
	// Alibaba Cloud's default credential chain is used.
	AccessKeyID     string `json:"access_key_id,omitempty"`
	AccessKeySecret string `json:"access_key_secret,omitempty"`

	// SignatureVersion is "v4" (OSS4-HMAC-SHA256) or "v1" (HMAC-SHA1).
	// Default: v4.
	SignatureVersion string `json:"signature_version,omitempty"`

	// KeyPrefix is prepended to every object key. Request placeholders such
	// as {http.auth.user.id} are expanded per request. Default: empty.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// KeyTemplate is the object name generated below the prefix.
	// {id} is a random id, {ext} the sanitized extension of the client's
	// filename (with its dot), {filename} the sanitized filename; Caddy
	// placeholders under http., env., time. and system. are expanded per
	// request. Any other placeholder is refused at load, and so is a
	// template without {id} unless KeyTemplateOverwrite is set.
	// Default: "{id}{ext}".
	KeyTemplate string `json:"key_template,omitempty"`

	// KeyTemplateOverwrite allows a KeyTemplate without {id}, such as
	// "{filename}": uploads whose template expands to the same key then
	// overwrite each other. Default: false, such a template is refused.
	KeyTemplateOverwrite bool `json:"key_template_overwrite,omitempty"`

	// MaxSize and MinSize bound the object size in bytes; OSS enforces them
	// through the policy's content-length-range. Default: 0 (no maximum),
	// 0 (no minimum).
	MaxSize int64 `json:"max_size,omitempty"`
	MinSize int64 `json:"min_size,omitempty"`

	// AllowTypes lists the content types clients may upload, e.g.
	// "image/*" or "application/pdf". Default: any type.
	AllowTypes []string `json:"allow_types,omitempty"`

	// DefaultType is the Content-Type a presigned PUT is signed for when the
	// client names no type; request placeholders are expanded per request.
	// It must be a type allow_types permits. The PostObject route does not
	// use it. Default: the type of the filename's extension (Go's
	// mime.TypeByExtension, parameters stripped), else
	// application/octet-stream.
	DefaultType string `json:"default_type,omitempty"`

	// PresignFormat is the presign route's answer: "json" (url, method,
	// headers, key, expires) or "url" (the bare URL as text/plain, as
	// Alibaba's sample server answers). A client whose Accept names
	// text/plain and not JSON gets the bare URL either way; with "url", one
	// whose Accept names application/json and not text/plain gets JSON.
	// Default: json.
	PresignFormat string `json:"presign_format,omitempty"`

	// Expires is the lifetime of policies and presigned URLs. Default: 15m.
	Expires caddy.Duration `json:"expires,omitempty"`

	// ClientKeys lets PostObject clients name the object themselves below
	// the prefix (the policy says starts-with $key <prefix>, as Alibaba's
	// samples expect). Default: false, the policy pins the exact key the
	// server chose.
	ClientKeys bool `json:"client_keys,omitempty"`

	// StorageClass is the storage class PostObject policies pin, so an
	// uploader cannot choose another with an extra form field: Standard,
	// IA, Archive, ColdArchive or DeepColdArchive. Default: Standard.
	StorageClass string `json:"storage_class,omitempty"`

	// FormFields is what PostObject policies require the form to send:
	// "full" pins the ACL (x-oss-object-acl default), the storage class and
	// the content type, and sends each callback variable as an x:<name>
	// field; "minimal" requires only what Alibaba's sample clients send
	// (key, policy, the signature fields, success_action_status and, with
	// callbacks, callback), and writes the callback variables into the
	// callback parameter itself. With minimal, OSS accepts an
	// x-oss-object-acl, x-oss-storage-class or content type field an
	// uploader adds to the form: the bucket's Block Public Access and its
	// default storage class are then what keeps objects private and in
	// their class. It cannot be combined with storage_class or
	// allow_types, which need those fields. Default: full.
	FormFields string `json:"form_fields,omitempty"`

	// STSPath, PolicyPath, PresignPath and CallbackPath are the routes the
	// handler answers; "off" disables one. Defaults: /oss/sts (when sts is
	// configured), /oss/post-policy, /oss/presign, /oss/callback (when
	// callback is configured).
	STSPath      string `json:"sts_path,omitempty"`
	PolicyPath   string `json:"policy_path,omitempty"`
	PresignPath  string `json:"presign_path,omitempty"`
	CallbackPath string `json:"callback_path,omitempty"`

	// ConfirmPath is the confirm route: after OSS answered an upload, the
	// uploader POSTs {"key": <object key>, "token": <the token its signing
	// answer gave it>} here, and the upload reaches the app as a verified
	// callback would, from what OSS stores (HeadObject), with the same
	// Idempotency-Key, so an upload confirmed and called back reaches the
	// app once. For sites OSS callbacks cannot reach. It needs the
	// callback block (not verify_only): where uploads go, and the body
	// the app receives. "off" disables it. Default: off.
	ConfirmPath string `json:"confirm_path,omitempty"`

	// UppyPath is the Companion URL to give Uppy's @uppy/aws-s3 plugin:
	// the handler answers Companion's S3 routes below it
	// (<uppy_path>/s3/params, <uppy_path>/s3/multipart, ...), with
	// multipart uploads done through OSS. "off" disables them.
	// Default: /oss/uppy, or off when PolicyPath is off.
	UppyPath string `json:"uppy_path,omitempty"`

	// STS configures the STS route.
	STS *STSConfig `json:"sts,omitempty"`

	// Callback configures OSS upload callbacks: what signing responses ask
	// OSS to send, and how the callback route verifies them.
	Callback *CallbackConfig `json:"callback,omitempty"`

	// Quota limits what each user may upload per window (see
	// QuotaConfig). Default: none.
	Quota *QuotaConfig `json:"quota,omitempty"`

	// configured is the configuration as decoded from JSON, before
	// Provision; nil for a handler built in Go.
	configured *configuredText

	logger       *zap.Logger
	id           string         // callback.HandlerID: names this handler's bindings, records and retries
	scope        callback.Scope // KeyPrefix as the space bindings may cover
	creds        *credentialSource
	ossBucket    *oss.Bucket // server-side calls (HeadObject, DeleteObject)
	uppy         *uppyRoutes // nil when uppy_path is off
	signer       *osssign.Signer
	uploadURL    string          // UploadURL with defaults applied, no trailing '/'
	keyPrefixTpl requestTemplate // KeyPrefix split at provision
	// uploadURLPlain: uploadURL needs no escaping in a JSON string.
	uploadURLPlain bool
	callbackB64    string // the callback parameter, "" when not configured
	now            func() time.Time
	sts            *sts.Broker
	callbackCanon  string        // callback.CanonicalPath(CallbackPath)
	bodyTpl        *bodyTemplate // the bound body template; nil with verify_only
	quotaTpl       *bodyTemplate // bodyTpl as a reload that turns the quota on or off finds it (otherQuotaTemplate)
	bindingKeys    *callback.KeySource
	storage        certmagic.Storage // Caddy's storage; tests set their own
	callback       *callbackRoute    // nil when the callback route is off
	quota          *quotaGate        // nil without a quota block
}

// STSConfig configures AssumeRole for the STS route.
type STSConfig struct {
	// RoleARN is the RAM role to assume. Required for the STS route.
	RoleARN string `json:"role_arn,omitempty"`

	// SessionName is the role session name; request placeholders are
	// expanded per request. Default: caddy-oss.
	SessionName string `json:"session_name,omitempty"`

	// Duration is the lifetime of issued credentials, 15m..12h. Default: 1h.
	Duration caddy.Duration `json:"duration,omitempty"`

	// RefreshBefore is how long before expiry cached credentials are
	// refreshed. Default: 5m.
	RefreshBefore caddy.Duration `json:"refresh_before,omitempty"`

	// Endpoint is the STS host or URL. Default: sts.<region>.aliyuncs.com.
	Endpoint string `json:"endpoint,omitempty"`

	// ExternalID is passed to AssumeRole when set.
	ExternalID string `json:"external_id,omitempty"`

	// CacheSize bounds the number of cached credentials. Default: 1024.
	CacheSize int `json:"cache_size,omitempty"`
}

// Callback delivery modes (CallbackConfig.Delivery).
const (
	deliveryModeQueued = "queued"
	deliveryModeDirect = "direct"
)

// CallbackConfig configures OSS upload callbacks.
type CallbackConfig struct {
	// URL is where OSS posts after an upload. When empty, signing responses
	// carry no callback and the callback route only verifies.
	URL string `json:"url,omitempty"`

	// Host is the Host header of the callback request. Default: the URL's host.
	Host string `json:"host,omitempty"`

	// Body is the callback body template with OSS ${...} variables.
	// Default: bucket, object, etag, size, mimeType and every custom var.
	Body string `json:"body,omitempty"`

	// BodyType is "form" (application/x-www-form-urlencoded) or "json".
	// Default: form.
	BodyType string `json:"body_type,omitempty"`

	// Vars are custom x:<name> callback variables; request placeholders
	// in values are expanded per request.
	Vars map[string]string `json:"vars,omitempty"`

	// TrustedKeys are PEM files of extra public keys trusted to sign
	// callbacks (sandbox, private clouds), besides Alibaba's.
	TrustedKeys []string `json:"trusted_keys,omitempty"`

	// MaxBody caps the callback body size in bytes. Default: 1MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// Delivery is how a verified callback reaches the upstream: "queued"
	// stores it in Caddy's storage first, answers OSS itself when the
	// upstream does not answer within AnswerWithin, and keeps delivering in
	// the background for RetryFor; "direct" relays the upstream's answer
	// and keeps nothing. Default: queued.
	Delivery string `json:"delivery,omitempty"`

	// AnswerWithin is how long a queued delivery waits for the upstream
	// before answering OSS (which waits 5 s at most). Default: 4s.
	AnswerWithin caddy.Duration `json:"answer_within,omitempty"`

	// RetryFor is how long a queued callback is retried before it is kept
	// as dead. Default: 24h.
	RetryFor caddy.Duration `json:"retry_for,omitempty"`

	// DisableSNI leaves callbackSNI out of callback parameters with an https
	// URL. OSS then connects without a TLS server name, which a server that
	// picks its certificate by name (Caddy without default_sni) refuses.
	// Default: false, https callback parameters say "callbackSNI": true.
	DisableSNI bool `json:"disable_sni,omitempty"`

	// VerifyOnly accepts every genuine callback (signature and replay
	// checks only), for an instance that verifies callbacks another signer
	// issued. By default only callbacks that carry this site's binding
	// (the x:oss_binding variable the signing routes add) are accepted.
	VerifyOnly bool `json:"verify_only,omitempty"`

	// ConfirmOnly leaves the callback parameter out of every signing
	// answer: OSS is asked for no callback, and uploads reach the app
	// through the confirm route only (confirm_path is required). The url
	// still names the path, query and Host the app receives uploads at.
	// Default: false, signing answers ask OSS for a callback (and, with
	// confirm_path, carry a confirm token too).
	ConfirmOnly bool `json:"confirm_only,omitempty"`

	// BindingKey is the secret bindings are signed with, at least 32
	// characters; {env.*} placeholders are expanded. Every instance serving
	// the site must share it. Default: a random key created once in Caddy's
	// storage, which instances sharing that storage share.
	BindingKey string `json:"binding_key,omitempty"`

	renderedBody string // the body template OSS receives, set at provision
	quota        bool   // the handler issues the quota's variables (set by Validate)
}

// UnmarshalJSON decodes the handler as Caddy does (unknown fields are
// errors) and keeps the text of every field with placeholders.
func (h *Handler) UnmarshalJSON(b []byte) error {
	type plain Handler
	if err := caddy.StrictUnmarshalJSON(b, (*plain)(h)); err != nil {
		return err
	}
	h.configured = h.configuredText()
	return nil
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oss_upload",
		New: func() caddy.Module { return new(Handler) },
	}
}

// route is one of the handler's routes by its config name.
type route struct{ name, path string }

// routes lists the route paths by their config names (the Uppy routes
// aside).
func (h *Handler) routes() []route {
	return []route{
		{"sts_path", h.STSPath}, {"policy_path", h.PolicyPath},
		{"presign_path", h.PresignPath}, {"callback_path", h.CallbackPath},
		{"confirm_path", h.ConfirmPath},
	}
}
