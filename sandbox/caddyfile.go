package sandbox

import (
	"strings"
	"text/template"
)

// The sandbox's fixed names. The Caddyfile is written as text, as a user
// would write it, so nothing here depends on the plugin's Go identifiers.
const (
	bucketName         = "sandbox"
	keyPrefix          = "uploads/"
	roleARN            = "acs:ram::1000000000000000:role/sandbox-uploader"
	defaultAccessKeyID = "sandbox-ak"
	defaultTypes       = "image/* video/* audio/* text/plain application/pdf application/zip application/json"
	// confirmPath is oss_upload's confirm_path with --no-callbacks.
	confirmPath = "/oss/confirm"
	// handlerLogger is the logger Caddy gives the oss_upload handler (its
	// module ID), which --debug turns to DEBUG.
	handlerLogger = "http.handlers.oss_upload"
)

// caddyfileParams are what the generated Caddyfile is made of.
type caddyfileParams struct {
	Bind, Port  string // the site's address
	Opts        options
	KeyFile     string // the emulator's callback public key, PEM
	Storage     string // Caddy's storage directory
	Region      string
	Endpoint    string // the emulator's OSS endpoint (path-style)
	STSEndpoint string
	UploadURL   string // the bucket's virtual-hosted URL, for browsers
	AppAddr     string // the demo app, host:port
}

func (p caddyfileParams) Bucket() string        { return bucketName }
func (p caddyfileParams) KeyPrefix() string     { return keyPrefix }
func (p caddyfileParams) RoleARN() string       { return roleARN }
func (p caddyfileParams) HandlerLogger() string { return handlerLogger }
func (p caddyfileParams) ConfirmPath() string   { return confirmPath }
func (p caddyfileParams) AllowTypes() string {
	return strings.Join(strings.Fields(p.Opts.AllowTypes), " ")
}

// The callback URL is the site itself, on 127.0.0.1: the emulator posts
// there, Caddy verifies, and reverse_proxy hands it to the demo app. With
// --no-callbacks OSS is asked for no callback (confirm_only); the page
// confirms each upload at confirm_path, and Caddy delivers it to the same
// URL.
var caddyfileTemplate = template.Must(template.New("Caddyfile").Funcs(template.FuncMap{"quote": quote}).Parse(`# caddy oss-sandbox: oss_upload in front of ossemu and a demo app.
# The emulator's and the demo app's addresses, the callback key file and the
# emulator account's key belong to this run; a new run picks new ones unless
# --oss-listen and --access-key-secret fix them.
{
	admin off
	auto_https off
	persist_config off
	# The binding key and the callback records and queue: the sandbox's
	# own directory, never the one a real Caddy on this machine uses.
	storage file_system {{quote .Storage}}
	http_port {{.Port}}
{{- if .Opts.Debug}}
	log oss_upload {
		level DEBUG
		include {{.HandlerLogger}}
	}
{{- end}}
}

http://:{{.Port}} {
	bind {{.Bind}}
{{- if .Opts.Debug}}
	log
{{- end}}
	# Who uploads: the sandbox_user cookie, which the page sets, else
	# "guest". Each user's keys go below their own prefix, and the Uppy
	# routes refuse another user's uploads. A real site would take an
	# authenticated user instead, such as {http.auth.user.id}.
	map {http.request.cookie.sandbox_user} {sandbox_user} {
		~^([A-Za-z0-9_-]{1,32})$ ${1}
		default guest
	}
	oss_upload {
		bucket {{.Bucket}}
		region {{.Region}}
		endpoint {{.Endpoint}}
		upload_url {{.UploadURL}}
		access_key_id {{.Opts.AccessKeyID}}
		access_key_secret {{.Opts.AccessKeySecret}}
		signature_version {{.Opts.SignatureVersion}}
		key_prefix {{.KeyPrefix}}{sandbox_user}/
		max_size {{.Opts.MaxSize}}
{{- if .AllowTypes}}
		allow_types {{.AllowTypes}}
{{- end}}
		expires {{.Opts.Expires}}
{{- if .Opts.PresignFormat}}
		presign_format {{.Opts.PresignFormat}}
{{- end}}
{{- if .Opts.DefaultType}}
		default_type "{{.Opts.DefaultType}}"
{{- end}}
{{- if .Opts.FormFields}}
		form_fields {{.Opts.FormFields}}
{{- end}}
{{- if .Opts.NoCallbacks}}
		# --no-callbacks: OSS never calls back a site on loopback (the
		# emulator refuses, as OSS does), so the page confirms each upload
		# here once the emulator has stored it; Caddy checks it with the
		# emulator and delivers it to the callback url as a verified callback.
		confirm_path {{.ConfirmPath}}
{{- end}}
{{- if .Opts.Quota}}
		# --quota-*: each user's upload quota (the key is the expanded
		# key_prefix, one per sandbox user). A signing over it gets 429
		# with Retry-After, which the page shows; an upload over it when
		# it is verified is deleted.
		quota {
{{- with .Opts.QuotaBytes}}
			bytes {{.}}
{{- end}}
{{- with .Opts.QuotaUploads}}
			uploads {{.}}
{{- end}}
{{- with .Opts.QuotaPending}}
			pending {{.}}
{{- end}}
		}
{{- end}}
		sts {
			role_arn {{.RoleARN}}
			session_name sandbox-{http.request.remote.host}
			endpoint {{.STSEndpoint}}
			duration 15m
		}
		callback {
			url http://127.0.0.1:{{.Port}}/oss/callback
			var client {http.request.remote.host}
			trusted_key {{quote .KeyFile}}
{{- if .Opts.NoCallbacks}}
			# Signing answers ask OSS for no callback, and carry the
			# confirm route and token instead.
			confirm_only
{{- end}}
		}
	}
	reverse_proxy {{.AppAddr}}
}
`))

// quote writes a path as one Caddyfile token: as it is when it has no
// space or character the Caddyfile treats specially, else in double quotes
// (storageDir refuses paths holding a quote or a line break).
func quote(path string) string {
	if path != "" && !strings.ContainsAny(path, " \t{}#\"`\\") {
		return path
	}
	return `"` + path + `"`
}

// caddyfile is the sandbox's Caddy configuration.
func caddyfile(p caddyfileParams) string {
	var b strings.Builder
	if err := caddyfileTemplate.Execute(&b, p); err != nil {
		panic(err) // the template and its data are fixed; a failure is a bug
	}
	return b.String()
}
