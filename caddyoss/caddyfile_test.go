package caddyoss

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`oss_upload {
		bucket b-1
		region cn-shanghai
		endpoint http://localhost:9000
		upload_url http://b-1.localhost:9000
		access_key_id {env.AK}
		access_key_secret {env.SK}
		signature_version v1
		key_prefix u/{http.auth.user.id}/
		key_template {time.now.year}/{id}{ext}
		max_size 20MiB
		min_size 1KB
		allow_types image/* application/pdf
		default_type image/png
		presign_format url
		expires 10m
		client_keys
		storage_class ia
		sts_path /s
		policy_path off
		presign_path /p
		callback_path /cb
		sts {
			role_arn acs:ram::1:role/r
			session_name web-{http.auth.user.id}
			duration 2h
			refresh_before 10m
			endpoint http://127.0.0.1:1
			external_id abc
			cache_size 10
		}
		callback {
			url https://app.example.com/cb
			host app.example.com
			body "a=${object}"
			body_type json
			var user {http.auth.user.id}
			var plan pro
			trusted_key /etc/k1.pem
			trusted_key /etc/k2.pem
			max_body 64KiB
			verify_only
			binding_key {env.BINDING_KEY}
			delivery direct
			answer_within 2s
			retry_for 48h
			sni off
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Handler{
		Bucket: "b-1", Region: "cn-shanghai", Endpoint: "http://localhost:9000", UploadURL: "http://b-1.localhost:9000",
		AccessKeyID: "{env.AK}", AccessKeySecret: "{env.SK}", SignatureVersion: "v1",
		KeyPrefix: "u/{http.auth.user.id}/", KeyTemplate: "{time.now.year}/{id}{ext}",
		MaxSize: 20 << 20, MinSize: 1000, AllowTypes: []string{"image/*", "application/pdf"},
		DefaultType: "image/png", PresignFormat: "url",
		Expires: caddy.Duration(10 * time.Minute), ClientKeys: true, StorageClass: "ia", STSPath: "/s", PolicyPath: "off", PresignPath: "/p", CallbackPath: "/cb",
		STS: &STSConfig{RoleARN: "acs:ram::1:role/r", SessionName: "web-{http.auth.user.id}", Duration: caddy.Duration(2 * time.Hour),
			RefreshBefore: caddy.Duration(10 * time.Minute), Endpoint: "http://127.0.0.1:1", ExternalID: "abc", CacheSize: 10},
		Callback: &CallbackConfig{URL: "https://app.example.com/cb", Host: "app.example.com", Body: "a=${object}", BodyType: "json",
			Vars: map[string]string{"user": "{http.auth.user.id}", "plan": "pro"}, TrustedKeys: []string{"/etc/k1.pem", "/etc/k2.pem"}, MaxBody: 64 << 10,
			VerifyOnly: true, BindingKey: "{env.BINDING_KEY}", Delivery: "direct",
			AnswerWithin: caddy.Duration(2 * time.Second), RetryFor: caddy.Duration(48 * time.Hour), DisableSNI: true},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got  %+v\nwant %+v\nsts %+v\ncallback %+v", h, want, *h.STS, *h.Callback)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{"argument on directive", `oss_upload extra { bucket b }`, "wrong argument count"},
		{"unknown subdirective", `oss_upload { buckett b }`, "unrecognized subdirective 'buckett'"},
		{"duplicate subdirective", "oss_upload {\nbucket one\nbucket two\n}", "duplicate subdirective 'bucket'"},
		{"missing value", "oss_upload {\nbucket\n}", "bucket: missing value"},
		{"extra value", "oss_upload {\nregion a b\n}", "unexpected argument 'b'"},
		{"bad signature version", "oss_upload {\nsignature_version v2\n}", "must be v4 or v1"},
		{"bad size", "oss_upload {\nmax_size lots\n}", "max_size: invalid size 'lots'"},
		{"bad duration", "oss_upload {\nexpires soon\n}", "expires: invalid duration 'soon'"},
		{"empty allow_types", "oss_upload {\nallow_types\n}", "wrong argument count"},
		{"unknown sts subdirective", "oss_upload {\nsts {\nrole a\n}\n}", "unrecognized sts subdirective 'role'"},
		{"duplicate sts subdirective", "oss_upload {\nsts {\nduration 1h\nduration 2h\n}\n}", "duplicate sts subdirective 'duration'"},
		{"sts argument", "oss_upload {\nsts x {\n}\n}", "wrong argument count"},
		{"bad cache size", "oss_upload {\nsts {\ncache_size 0\n}\n}", "cache_size must be a positive integer"},
		{"unknown callback subdirective", "oss_upload {\ncallback {\nurll x\n}\n}", "unrecognized callback subdirective 'urll'"},
		{"bad body type", "oss_upload {\ncallback {\nbody_type xml\n}\n}", "body_type must be form or json"},
		{"var arity", "oss_upload {\ncallback {\nvar a\n}\n}", "wrong argument count"},
		{"var name", "oss_upload {\ncallback {\nvar User 1\n}\n}", "must be lower-case"},
		{"duplicate var", "oss_upload {\ncallback {\nvar a 1\nvar a 2\n}\n}", "duplicate callback var 'a'"},
		{"duplicate block", "oss_upload {\ncallback {\n}\ncallback {\n}\n}", "duplicate subdirective 'callback'"},
		{"client_keys argument", "oss_upload {\nclient_keys yes\n}", "client_keys takes no argument"},
		{"storage class", "oss_upload {\nstorage_class Glacier\n}", "storage_class must be Standard, IA"},
		{"verify_only argument", "oss_upload {\ncallback {\nverify_only true\n}\n}", "verify_only takes no argument"},
		{"binding_key arity", "oss_upload {\ncallback {\nbinding_key\n}\n}", "binding_key: missing value"},
		{"delivery mode", "oss_upload {\ncallback {\ndelivery later\n}\n}", "delivery must be queued or direct"},
		{"sni value", "oss_upload {\ncallback {\nsni maybe\n}\n}", "sni must be on or off"},
		{"retry_for duration", "oss_upload {\ncallback {\nretry_for soon\n}\n}", "retry_for: invalid duration 'soon'"},
		{"default_type arity", "oss_upload {\ndefault_type\n}", "default_type: missing value"},
		{"default_type two values", "oss_upload {\ndefault_type image/png text/plain\n}", "default_type: unexpected argument 'text/plain'"},
		{"presign_format arity", "oss_upload {\npresign_format\n}", "presign_format: missing value"},
		{"confirm_only argument", "oss_upload {\ncallback {\nconfirm_only yes\n}\n}", "confirm_only takes no argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Semantic errors are caught while parsing, so `caddy adapt` reports them
// with the line of the subdirective at fault (for a pair, the later one).
func TestUnmarshalCaddyfileCheckErrors(t *testing.T) {
	tests := []struct {
		name, block, want string
		line              int // of the Caddyfile below, which starts with "oss_upload {"
	}{
		{"min over max", "min_size 2MB\nmax_size 1MB", "min_size (2000000) is greater than max_size (1000000)", 3},
		{"min over max, min last", "max_size 1MB\nmin_size 2MB", "min_size (2000000) is greater than max_size (1000000)", 3},
		{"max over 5GiB", "bucket example-bucket\nmax_size 6GiB", "max_size: 6442450944 exceeds the OSS limit of 5 GiB", 3},
		{"size that does not parse", "max_size ten", "max_size: invalid size 'ten'", 2},
		{"max_body that does not parse", "callback {\nmax_body big\n}", "max_body: invalid size 'big'", 3},
		{"expires too short", "expires 500ms", "expires: must be between 1s and 7 days, got 500ms", 2},
		{"expires too long", "region cn-hangzhou\nexpires 8d", "expires: must be between 1s and 7 days, got 192h0m0s", 3},
		{"duration that does not parse", "sts {\nduration forever\n}", "duration: invalid duration 'forever'", 3},
		{"sts duration short", "sts {\nduration 10m\n}", "sts.duration: must be between 15m and 12h, got 10m0s", 3},
		{"sts duration long", "sts {\nrole_arn acs:ram::1:role/r\nduration 13h\n}", "sts.duration: must be between 15m and 12h", 4},
		{"refresh over default duration", "sts {\nrefresh_before 2h\n}", "sts.refresh_before: must be shorter than sts.duration (1h0m0s), got 2h0m0s", 3},
		{"refresh over duration", "sts {\nrefresh_before 30m\nduration 20m\n}", "sts.refresh_before: must be shorter than sts.duration (20m0s), got 30m0s", 4},
		{"refresh equal to duration", "sts {\nduration 20m\nrefresh_before 20m\n}", "must be shorter than sts.duration", 4},
		{"bad bucket", "region cn-hangzhou\nbucket Example_Bucket", `bucket: "Example_Bucket" is not a valid OSS bucket name`, 3},
		{"oss- region", "region oss-cn-hangzhou", `region: use the region id ("cn-hangzhou"), not "oss-cn-hangzhou"`, 2},
		{"unknown template placeholder", "key_template {user}/{id}{extension}", `key_template: "{user}/{id}{extension}" uses unknown placeholder(s) {user} {extension}`, 2},
		{"unknown time placeholder", "key_template {time.now.yaer}/{id}", "unknown placeholder(s) {time.now.yaer}", 2},
		{"template without id", "bucket example-bucket\nkey_template {filename}", "key_template: '{filename}' has no {id}, so uploads could share a key and overwrite each other; add {id}, or write 'key_template {filename} overwrite'", 3},
		{"template option", "key_template {filename} replace", "key_template: unexpected argument 'replace'", 2},
		{"template escaping the prefix", "key_template ../{id}", `key_template: "../{id}" contains a ".." segment`, 2},
		{"relative route path", "presign_path presign", `presign_path: "presign" must start with '/'`, 2},
		{"same route path", "policy_path /oss/sign\npresign_path /oss/sign", `policy_path and presign_path are both "/oss/sign"`, 3},
		{"placeholder route path", "sts_path {env.STS_PATH}", `sts_path: "{env.STS_PATH}" must start with '/'`, 2},
		{"presign_format unknown", "presign_format text", `presign_format: must be json or url, got "text"`, 2},
		{"presign_format case", "presign_format URL", `presign_format: must be json or url, got "URL"`, 2},
		{"default_type not a type", "default_type png", `default_type: "png" is not a media type such as image/png`, 2},
		{"default_type wildcard", "default_type image/*", `default_type: "image/*" is not a media type`, 2},
		{"default_type bad parameter", "default_type \"text/plain; charset\"", `default_type: "text/plain; charset" is not a media type`, 2},
		{"default_type outside allow_types", "allow_types image/*\ndefault_type application/pdf", `default_type: "application/pdf" is not in allow_types (image/*)`, 3},
		{"allow_types refusing default_type", "default_type application/octet-stream\nallow_types image/* text/plain", `default_type: "application/octet-stream" is not in allow_types (image/*, text/plain)`, 3},
		// The confirm route: at confirm_path's line, or the callback
		// block's for confirm_only.
		{"confirm without callback block", "bucket b-1\nconfirm_path /oss/confirm", "confirm_path: the confirm route needs the callback block", 3},
		{"confirm with verify_only", "confirm_path /oss/confirm\ncallback {\nverify_only\n}", "confirm_path: the confirm route checks the token this handler's signing answers issue, which verify_only turns off", 2},
		{"confirm_only without confirm_path", "bucket b-1\ncallback {\nurl https://s.example.com/oss/callback\nconfirm_only\n}", "callback.confirm_only: needs confirm_path", 3},
		{"confirm_only, confirm_path off", "confirm_path off\ncallback {\nurl https://s.example.com/oss/callback\nconfirm_only\n}", "callback.confirm_only: needs confirm_path", 3},
		{"relative confirm_path", "confirm_path confirm\n" + confirmCallback, `confirm_path: "confirm" must start with '/'`, 2},
		{"confirm_path on callback_path", "callback_path /oss/in\nconfirm_path /oss/in\n" + confirmCallback, `callback_path and confirm_path are both "/oss/in"`, 3},
		{"confirm_path on the default callback path", "confirm_path /oss/callback\n" + confirmCallback, `confirm_path: "/oss/callback" is a spelling of callback_path "/oss/callback"`, 2},
		{"confirm_path spelling the callback path", "confirm_path /OSS//Callback/\n" + confirmCallback, `is a spelling of callback_path "/oss/callback"`, 2},
		{"confirm_path on policy_path", "policy_path /oss/confirm\nconfirm_path /oss/confirm\n" + confirmCallback, `policy_path and confirm_path are both "/oss/confirm"`, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\n" + tc.block + "\n}"))
			at := fmt.Sprintf(", at Testfile:%d", tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), at) {
				t.Errorf("error %v\nwant %q%s", err, tc.want, at)
			}
		})
	}
}

// confirmCallback is a callback block for the confirm route's cases.
const confirmCallback = "callback {\nurl https://s.example.com/oss/callback\n}"

// What the parse-time checks must let through.
func TestUnmarshalCaddyfileChecksAccept(t *testing.T) {
	for _, block := range []string{
		"bucket {env.OSS_BUCKET}",
		"region {env.OSS_REGION}",
		"sts_path off\npolicy_path off",
		"min_size 1KB\nmax_size 5GiB",
		"min_size 1KB",
		"expires 7d",
		"sts {\nduration 12h\nrefresh_before 11h\n}",
		"key_template {http.auth.user.id}/{time.now.year}/{env.STAGE}-{system.hostname}-{id}{ext}",
		"key_template {http.request.uuid}-{filename} overwrite",
		"presign_format json",
		"presign_format url",
		"allow_types image/*\ndefault_type Image/PNG",
		"default_type \"text/plain; charset=utf-8\"\nallow_types text/*",
		"allow_types image/*\ndefault_type {http.request.header.X-Type}",
		"confirm_path /oss/confirm\n" + confirmCallback,
		"confirm_path /oss/confirm\ncallback {\nurl https://s.example.com/oss/callback\nconfirm_only\n}",
		"confirm_path /oss/confirm\ncallback_path off\ncallback {\nurl https://s.example.com/oss/callback\nconfirm_only\n}",
		"confirm_path off\n" + confirmCallback,
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\n" + block + "\n}")); err != nil {
			t.Errorf("%q: %v", block, err)
		}
	}
}

func TestUnmarshalCaddyfileKeyTemplateOverwrite(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\nkey_template uploads-{filename} overwrite\n}")); err != nil {
		t.Fatal(err)
	}
	if h.KeyTemplate != "uploads-{filename}" || !h.KeyTemplateOverwrite {
		t.Errorf("key_template %q, overwrite %v", h.KeyTemplate, h.KeyTemplateOverwrite)
	}
}

func TestValidate(t *testing.T) {
	base := func() Handler {
		return Handler{Bucket: "bucket-1", Region: "cn-hangzhou", AccessKeyID: "a", AccessKeySecret: "b",
			SignatureVersion: osssign.V4, Expires: caddy.Duration(time.Minute),
			PolicyPath: "/p", PresignPath: "/s", STSPath: routeOff, CallbackPath: routeOff}
	}
	tests := []struct {
		name string
		edit func(*Handler)
		want string // "" means valid
	}{
		{"valid", func(h *Handler) {}, ""},
		{"missing bucket", func(h *Handler) { h.Bucket = "" }, "bucket is required"},
		{"bad bucket", func(h *Handler) { h.Bucket = "Bad_Bucket" }, "not a valid OSS bucket name"},
		{"missing region", func(h *Handler) { h.Region = "" }, "region is required"},
		{"oss- region", func(h *Handler) { h.Region = "oss-cn-hangzhou" }, "use the region id"},
		{"half key pair", func(h *Handler) { h.AccessKeySecret = "" }, "must be set together"},
		{"min > max", func(h *Handler) { h.MinSize, h.MaxSize = 10, 5 }, "min_size (10) is greater than max_size (5)"},
		{"max over 5GiB", func(h *Handler) { h.MaxSize = 6 << 30 }, "exceeds the OSS limit"},
		{"expires too long", func(h *Handler) { h.Expires = caddy.Duration(8 * 24 * time.Hour) }, "expires: must be between 1s and 7 days"},
		{"bad type pattern", func(h *Handler) { h.AllowTypes = []string{"image"} }, "allow_types"},
		{"bad endpoint", func(h *Handler) { h.Endpoint = "oss.example.com" }, "endpoint"},
		{"same paths", func(h *Handler) { h.PresignPath = "/p" }, "both \"/p\""},
		{"relative path", func(h *Handler) { h.PolicyPath = "p" }, "must start with '/'"},
		{"sts route without block", func(h *Handler) { h.STSPath = "/sts" }, "sts.role_arn is required"},
		{"sts without role", func(h *Handler) { h.STSPath = "/sts"; h.STS = &STSConfig{} }, "sts.role_arn is required"},
		{"bad role arn", func(h *Handler) { h.STS = &STSConfig{RoleARN: "role"} }, "not a RAM role ARN"},
		{"sts duration short", func(h *Handler) {
			h.STS = &STSConfig{RoleARN: "acs:ram::1:role/r", Duration: caddy.Duration(time.Minute)}
		}, "sts.duration: must be between 15m and 12h"},
		{"sts duration long", func(h *Handler) {
			h.STS = &STSConfig{RoleARN: "acs:ram::1:role/r", Duration: caddy.Duration(13 * time.Hour)}
		}, "sts.duration"},
		{"refresh >= duration", func(h *Handler) {
			h.STS = &STSConfig{RoleARN: "acs:ram::1:role/r", Duration: caddy.Duration(time.Hour), RefreshBefore: caddy.Duration(time.Hour)}
		}, "sts.refresh_before"},
		{"callback path without block", func(h *Handler) { h.CallbackPath = "/cb" }, "no callback block"},
		{"callback url", func(h *Handler) { h.Callback = &CallbackConfig{URL: "ftp://x"} }, "callback url must be an absolute http or https URL"},
		{"callback host without url", func(h *Handler) { h.Callback = &CallbackConfig{Host: "example.com"} }, "callback.url is required"},
		{"bound checking instance needs its template", func(h *Handler) {
			*h = Handler{Bucket: "bucket-1", Region: "cn-hangzhou", PolicyPath: routeOff, PresignPath: routeOff, STSPath: routeOff, CallbackPath: "/cb",
				Callback: &CallbackConfig{Vars: map[string]string{"a": "b"}}}
		}, ""},
		{"bound checking instance needs the bucket", func(h *Handler) {
			*h = Handler{PolicyPath: routeOff, PresignPath: routeOff, STSPath: routeOff, CallbackPath: "/cb", Callback: &CallbackConfig{}}
		}, "bucket and region are required to check callback bindings"},
		{"verify-only instance needs no bucket", func(h *Handler) {
			*h = Handler{PolicyPath: routeOff, PresignPath: routeOff, STSPath: routeOff, CallbackPath: "/cb", Callback: &CallbackConfig{VerifyOnly: true}}
		}, ""},
		{"reserved var name", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Vars: map[string]string{"oss_binding": "x"}}
		}, "reserved for the binding"},
		{"body without object", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Body: "bucket=${bucket}"}
		}, "must carry ${object}"},
		{"body without a var", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Body: "object=${object}", Vars: map[string]string{"user": "u"}}
		}, "does not use var \"user\""},
		{"body with an undefined var", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Body: "object=${object}&u=${x:user}"}
		}, "which no var defines"},
		{"body with mixed value", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Body: "object=a${object}"}
		}, "one whole ${variable}"},
		{"json body with quoted placeholder", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", BodyType: bodyTypeJSON, Body: `{"object":"${object}"}`}
		}, "without quotes"},
		{"json body nested", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", BodyType: bodyTypeJSON, Body: `{"object":${object},"a":{"b":1}}`}
		}, "string, number, boolean or null"},
		{"body names the binding", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Body: "object=${object}&b=${x:oss_binding}"}
		}, "added by the handler"},
		{"unchecked body with verify_only", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Body: "object=a${object}", VerifyOnly: true}
		}, ""},
		{"answer_within over OSS's wait", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", AnswerWithin: caddy.Duration(5 * time.Second)}
		}, "callback.answer_within: must be between 100ms and 4.5s"},
		{"delivery mode", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", Delivery: "eventually"}
		}, "callback.delivery: must be queued or direct"},
		{"short binding key", func(h *Handler) {
			h.Callback = &CallbackConfig{URL: "https://a.example/cb", BindingKey: "short"}
		}, "binding_key: must be at least 32"},
		{"wildcard prefix", func(h *Handler) { h.KeyPrefix = "uploads/*/" }, "wildcard or reference"},
		{"dollar prefix", func(h *Handler) { h.KeyPrefix = "uploads/${filename}/" }, "key_prefix"},
		{"storage class", func(h *Handler) { h.StorageClass = "Glacier" }, "storage_class"},
		{"expires too short", func(h *Handler) { h.Expires = caddy.Duration(time.Millisecond) }, "expires: must be between 1s and 7 days"},
		{"refresh negative", func(h *Handler) {
			h.STS = &STSConfig{RoleARN: "acs:ram::1:role/r", RefreshBefore: caddy.Duration(-time.Minute)}
		}, "sts.refresh_before: must not be negative"},
		{"template with unknown placeholders", func(h *Handler) { h.KeyTemplate = "{vars.user}/{id}{nope}" }, "unknown placeholder(s) {vars.user} {nope}"},
		{"template without id", func(h *Handler) { h.KeyTemplate = "{filename}" }, "key_template: \"{filename}\" has no {id}"},
		{"template without id, allowed", func(h *Handler) { h.KeyTemplate, h.KeyTemplateOverwrite = "{filename}", true }, ""},
		{"template with caddy placeholders", func(h *Handler) { h.KeyTemplate = "{http.auth.user.id}/{time.now.unix}-{id}" }, ""},
		{"template naming a folder", func(h *Handler) { h.KeyTemplate = "{id}/" }, "ends with '/'"},
		{"template with a dollar", func(h *Handler) { h.KeyTemplate = "${filename}{id}" }, "contains '$'"},
		{"presign_format url", func(h *Handler) { h.PresignFormat = presignFormatURL }, ""},
		{"presign_format unknown", func(h *Handler) { h.PresignFormat = "bare" }, `presign_format: must be json or url, got "bare"`},
		{"default_type", func(h *Handler) { h.DefaultType = "image/png"; h.AllowTypes = []string{"image/*"} }, ""},
		{"default_type not a type", func(h *Handler) { h.DefaultType = "image" }, `default_type: "image" is not a media type`},
		{"default_type outside allow_types", func(h *Handler) {
			h.DefaultType = "text/html"
			h.AllowTypes = []string{"image/*", "application/pdf"}
		}, `default_type: "text/html" is not in allow_types (image/*, application/pdf)`},
		{"default_type with placeholders, checked per request", func(h *Handler) {
			h.DefaultType = "{http.request.header.X-Type}"
			h.AllowTypes = []string{"image/*"}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			tc.edit(&h)
			err := h.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestProvisionDefaults(t *testing.T) {
	t.Setenv("TEST_OSS_BUCKET", "env-bucket")
	h := testHandler(t, func(h *Handler) {
		h.Bucket = "{env.TEST_OSS_BUCKET}"
		h.STS = &STSConfig{RoleARN: "acs:ram::1:role/r"}
	})
	if h.Bucket != "env-bucket" || h.Endpoint != "https://oss-cn-hangzhou.aliyuncs.com" ||
		h.uploadURL != "https://env-bucket.oss-cn-hangzhou.aliyuncs.com" || h.SignatureVersion != osssign.V4 ||
		time.Duration(h.Expires) != 15*time.Minute || h.PolicyPath != "/oss/post-policy" || h.PresignPath != "/oss/presign" ||
		h.STSPath != "/oss/sts" || h.CallbackPath != routeOff {
		t.Errorf("defaults not applied: %+v", h)
	}
	s := h.STS
	if s.SessionName != "caddy-oss" || time.Duration(s.Duration) != time.Hour || time.Duration(s.RefreshBefore) != 5*time.Minute ||
		s.Endpoint != "sts.cn-hangzhou.aliyuncs.com" || s.CacheSize != 1024 {
		t.Errorf("sts defaults not applied: %+v", s)
	}
}
