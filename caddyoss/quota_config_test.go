package caddyoss

// The quota block's configuration: Caddyfile syntax errors, the load-time
// checks of Validate (each message naming the fix), what `caddy adapt`
// writes, and the startup line's quota field.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestQuotaCaddyfile(t *testing.T) {
	var h Handler
	block := "oss_upload {\nmax_size 10MiB\ncallback {\nurl https://app.example.com/oss/callback\n}\nquota {\nkey {http.auth.user.id}\nbytes 2GiB per 24h\nuploads 500 per 24h\npending 20\n}\n}"
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(block)); err != nil {
		t.Fatal(err)
	}
	want := QuotaConfig{Key: "{http.auth.user.id}", Bytes: 2 << 30, Uploads: 500, Pending: 20, Window: caddy.Duration(24 * time.Hour)}
	if h.Quota == nil || *h.Quota != want {
		t.Fatalf("%+v, want %+v", h.Quota, want)
	}
	for _, tc := range []struct {
		lines string
		want  QuotaConfig
	}{
		{"bytes 10MB", QuotaConfig{Bytes: 10_000_000}},
		{"uploads 3\nwindow 1h", QuotaConfig{Uploads: 3, Window: caddy.Duration(time.Hour)}},
		{"window 7d\nbytes 1KiB per 7d", QuotaConfig{Bytes: 1024, Window: caddy.Duration(7 * 24 * time.Hour)}},
		{"pending 1", QuotaConfig{Pending: 1}},
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\nmax_size 1KB\nconfirm_path /oss/confirm\ncallback {\nurl https://app.example.com/oss/callback\n}\nquota {\n" + tc.lines + "\n}\n}")); err != nil {
			t.Errorf("%q: %v", tc.lines, err)
		} else if *h.Quota != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.lines, *h.Quota, tc.want)
		}
	}
}

// Syntax errors name the line and what to write instead.
func TestQuotaCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, lines, want string }{
		{"bytes without a value", "bytes", "bytes: want 'bytes <n>' or 'bytes <n> per <window>', such as 'bytes 2GiB per 24h'"},
		{"uploads with two values", "uploads 5 10", "uploads: want 'uploads <n>' or 'uploads <n> per <window>', such as 'uploads 500 per 24h'"},
		{"per without a window", "uploads 5 per", "such as 'uploads 500 per 24h'"},
		{"every instead of per", "uploads 5 every 1h", "such as 'uploads 500 per 24h'"},
		{"a size that is not one", "bytes lots", "bytes: invalid size 'lots' (a positive size, in bytes or units such as 2GB or 2GiB)"},
		{"a negative size", "bytes -1", "bytes: invalid size '-1'"},
		{"a count that is not one", "uploads many", "uploads: must be a positive integer, got 'many'"},
		{"no uploads", "uploads 0", "uploads: must be a positive integer, got '0'"},
		{"negative uploads", "uploads -3", "must be a positive integer, got '-3'"},
		{"no pending", "pending 0", "pending: must be a positive integer, got '0'"},
		{"pending without a value", "pending", "pending: missing value"},
		{"a window that is not one", "uploads 5 per soon", "uploads: invalid window 'soon' (use units such as 1h, 24h or 7d)"},
		{"window directive", "window soon", "window: invalid duration 'soon'"},
		{"two windows", "bytes 1GB per 1h\nuploads 5 per 2h", "quota: bytes and uploads are counted over one window; got 1h0m0s and 2h0m0s"},
		{"window, then another per", "window 1h\nuploads 5 per 2h", "counted over one window; got 1h0m0s and 2h0m0s"},
		{"per, then another window", "uploads 5 per 2h\nwindow 1h", "counted over one window; got 2h0m0s and 1h0m0s"},
		{"unknown subdirective", "limit 5", "unrecognized quota subdirective 'limit'"},
		{"duplicate subdirective", "pending 1\npending 2", "duplicate quota subdirective 'pending'"},
		{"key without a value", "key", "key: missing value"},
		{"key with two values", "key a b", "key: unexpected argument 'b'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\nquota {\n" + tc.lines + "\n}\n}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("error %v\nwant %q, at its line", err, tc.want)
			}
		})
	}
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\nquota extra {\n}\n}")); err == nil || !strings.Contains(err.Error(), "wrong argument count") {
		t.Errorf("an argument on quota: %v", err)
	}
}

// What a configuration loads with: Validate refuses every quota the
// handler cannot keep, naming the fix.
func TestQuotaValidate(t *testing.T) {
	valid := func(edit func(*Handler)) func(*Handler) {
		return confirmed(func(h *Handler) {
			h.MaxSize = 1000
			h.Quota = &QuotaConfig{Key: "{http.auth.user.id}", Bytes: 5000, Uploads: 5, Pending: 2, Window: caddy.Duration(time.Hour)}
			if edit != nil {
				edit(h)
			}
		})
	}
	for _, tc := range []struct {
		name string
		edit func(*Handler)
		want string // "" means valid
	}{
		{"valid", valid(nil), ""},
		{"only pending, no max_size", valid(func(h *Handler) { h.MaxSize, h.Quota.Bytes, h.Quota.Uploads = 0, 0, 0 }), ""},
		{"bytes equal to max_size", valid(func(h *Handler) { h.Quota.Bytes = 1000 }), ""},
		{"the confirm route alone", valid(func(h *Handler) { h.CallbackPath = routeOff }), ""},
		{"the callback route alone", valid(func(h *Handler) { h.ConfirmPath = routeOff }), ""},
		{"default window", valid(func(h *Handler) { h.Quota.Window = 0 }), ""},
		{"negative bytes", valid(func(h *Handler) { h.Quota.Bytes = -1 }), "quota: bytes, uploads and pending must not be negative"},
		{"negative uploads", valid(func(h *Handler) { h.Quota.Uploads = -1 }), "must not be negative"},
		{"negative pending", valid(func(h *Handler) { h.Quota.Pending = -1 }), "must not be negative"},
		{"no limit", valid(func(h *Handler) { h.Quota.Bytes, h.Quota.Uploads, h.Quota.Pending = 0, 0, 0 }), "quota: set at least one of bytes, uploads or pending"},
		{"window under a second", valid(func(h *Handler) { h.Quota.Window = caddy.Duration(500 * time.Millisecond) }), "quota: window must be at least 1s, got 500ms"},
		{"negative window", valid(func(h *Handler) { h.Quota.Window = caddy.Duration(-time.Hour) }), "quota: window must be at least 1s"},
		{"bytes without max_size", valid(func(h *Handler) { h.MaxSize = 0 }), "quota: bytes needs max_size: an upload whose size the client does not declare reserves max_size"},
		{"bytes under max_size", valid(func(h *Handler) { h.Quota.Bytes = 999 }), "quota: bytes 999 B is below max_size 1000 B: an upload of max_size could never fit; raise bytes or lower max_size"},
		{"no callback block", valid(func(h *Handler) { h.Callback, h.CallbackPath, h.ConfirmPath = nil, routeOff, routeOff }),
			"quota: uploads are charged when this handler verifies them: add a callback block (without verify_only) with the callback route on, or confirm_path"},
		{"verify_only", valid(func(h *Handler) { h.Callback.VerifyOnly, h.ConfirmPath = true, routeOff }), "uploads are charged when this handler verifies them"},
		{"no route verifies", valid(func(h *Handler) { h.CallbackPath, h.ConfirmPath = routeOff, routeOff }), "with the callback route on, or confirm_path"},
		{"var oss_quota", valid(func(h *Handler) { h.Callback.Vars[quotaIDVar] = "x" }), `quota: the callback var name "oss_quota" is reserved for the quota`},
		{"var oss_quota_key", valid(func(h *Handler) { h.Callback.Vars[quotaKeyVar] = "x" }), `quota: the callback var name "oss_quota_key" is reserved for the quota`},
		{"body uses ${x:oss_quota}", valid(func(h *Handler) {
			h.Callback.Vars[quotaIDVar] = "x"
			h.Callback.Body = "o=${object}&q=${x:oss_quota}&u=${x:user}"
		}), "callback.body: ${x:oss_quota} is added by the handler; remove it"},
		{"body uses ${x:oss_quota_key}", valid(func(h *Handler) { h.Callback.Body = "o=${object}&k=${x:oss_quota_key}&u=${x:user}" }),
			"callback.body: ${x:oss_quota_key} is added by the handler; remove it"},
		{"body field oss_quota", valid(func(h *Handler) { h.Callback.Body = "object=${object}&oss_quota=${x:user}" }), `callback.body: the field name "oss_quota" is reserved`},
		{"JSON body field oss_quota_key", valid(func(h *Handler) {
			h.Callback.BodyType = bodyTypeJSON
			h.Callback.Body = `{"object":${object},"oss_quota_key":${x:user}}`
		}), `callback.body: the field name "oss_quota_key" is reserved`},
		{"the same body without a quota", confirmed(func(h *Handler) { h.Callback.Body = "object=${object}&oss_quota=${x:user}" }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler{Bucket: "bucket-1", Region: "cn-hangzhou", AccessKeyID: "a", AccessKeySecret: "b",
				PolicyPath: "/p", PresignPath: "/s", STSPath: routeOff}
			tc.edit(&h)
			err := h.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}

// `caddy adapt` writes the quota object.
func TestQuotaAdapt(t *testing.T) {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`http://localhost {
	oss_upload {
		bucket b-1
		region cn-hangzhou
		max_size 10MiB
		callback {
			url https://app.example.com/oss/callback
		}
		quota {
			key {http.auth.user.id}
			bytes 2GiB per 24h
			uploads 500 per 24h
			pending 20
		}
	}
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `"quota":{"bytes":2147483648,"key":"{http.auth.user.id}","pending":20,"uploads":500,"window":86400000000000}`
	if !strings.Contains(string(cfg), want) {
		t.Errorf("adapted:\n%s\nwant it to contain\n%s", cfg, want)
	}
}

// The startup line tells the quota: its configured key and the limits set.
func TestQuotaStartupLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		quota  QuotaConfig
		want   string
	}{
		{"every limit", "u/{http.auth.user.id}/", QuotaConfig{Key: "{http.auth.user.id}", Bytes: 5000, Uploads: 5, Pending: 2, Window: caddy.Duration(time.Hour)},
			`{"bytes":5000,"key":"{http.auth.user.id}","pending":2,"uploads":5,"window":"1h0m0s"}`},
		{"the key prefix, the default window", "u/{http.request.header.X-User}/", QuotaConfig{Uploads: 7},
			`{"key":"u/{http.request.header.X-User}/","uploads":7,"window":"24h0m0s"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHandler(t, func(h *Handler) {
				h.KeyPrefix, h.MaxSize = tc.prefix, 1000
				h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
				q := tc.quota
				h.Quota = &q
			})
			_, f := startupLine(t, h)
			b, _ := json.Marshal(f["quota"])
			if string(b) != tc.want {
				t.Errorf("quota %s, want %s", b, tc.want)
			}
		})
	}
	h := testHandler(t, nil)
	if _, f := startupLine(t, h); f["quota"] != nil {
		t.Errorf("a handler without a quota: %v", f["quota"])
	}
}

// A quota whose key is the same for every request (neither quota key nor
// key_prefix has a placeholder) is one quota for the whole site: Provision
// warns.
func TestQuotaWarnsOneKeyForTheSite(t *testing.T) {
	for _, tc := range []struct {
		prefix, key string
		warn        bool
	}{
		{"uploads/", "", true},
		{"uploads/", "the-site", true},
		{"uploads/", "{http.auth.user.id}", false},
		{"u/{http.request.header.X-User}/", "", false},
	} {
		h := testHandler(t, func(h *Handler) {
			h.KeyPrefix, h.MaxSize = tc.prefix, 1000
			h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
			h.Quota = &QuotaConfig{Key: tc.key, Uploads: 5}
		})
		core, logs := observer.New(zapcore.WarnLevel)
		h.logger = zap.New(core)
		provisioned := h.quota
		ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
		if err := h.provisionQuota(ctx); err != nil {
			t.Fatal(err)
		}
		h.quota.cleanup()
		cancel()
		h.quota = provisioned
		warned := false
		for _, e := range logs.TakeAll() {
			warned = warned || strings.Contains(e.Message, "the whole site shares one quota") && e.ContextMap()["key"] == h.quotaKeyText()
		}
		if warned != tc.warn {
			t.Errorf("key_prefix %q, quota key %q: warned %v, want %v", tc.prefix, tc.key, warned, tc.warn)
		}
	}
}
