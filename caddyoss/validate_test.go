package caddyoss

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/certmagic"
)

// Mistakes that used to pass `caddy validate`, caught while parsing the
// Caddyfile with the line at fault.
func TestCaddyfileCatchesMistakes(t *testing.T) {
	tests := []struct {
		name, block, want string
		line              int // of the Caddyfile below, which starts with "oss_upload {"
	}{
		{"region typo", "region cn-hangzou", `region: "cn-hangzou" is not an OSS region id; did you mean "cn-hangzhou"?`, 2},
		{"region typo, other", "bucket b-1\nregion ap-southeast1", `did you mean "ap-southeast-1"?`, 3},
		{"region case", "region CN-Shanghai", `did you mean "cn-shanghai"?`, 2},
		{"region far from any", "region mars-north-1", `region: "mars-north-1" is not an OSS region id such as cn-hangzhou (for a region OSS opened after this release, write 'region mars-north-1 unlisted', in JSON "region_unlisted": true)`, 2},
		{"region option", "region cn-hangzhou later", `region: unexpected argument 'later' (the only option is 'unlisted'`, 2},
		{"endpoint of another region", "region cn-hangzhou\nendpoint https://oss-cn-shanghai.aliyuncs.com",
			`endpoint: "https://oss-cn-shanghai.aliyuncs.com" is an endpoint of region cn-shanghai, but region is cn-hangzhou; use https://oss-cn-hangzhou.aliyuncs.com (or its -internal form), or set region cn-shanghai`, 3},
		{"endpoint before region", "endpoint https://oss-cn-shanghai-internal.aliyuncs.com\nregion cn-hangzhou", `is an endpoint of region cn-shanghai, but region is cn-hangzhou`, 3},
		{"dual-stack endpoint", "region cn-beijing\nendpoint https://cn-hangzhou.oss.aliyuncs.com", `is an endpoint of region cn-hangzhou, but region is cn-beijing`, 3},
		{"upload_url of another region", "bucket b-1\nregion cn-hangzhou\nupload_url https://b-1.oss-cn-beijing.aliyuncs.com", `upload_url: "https://b-1.oss-cn-beijing.aliyuncs.com" is an endpoint of region cn-beijing`, 4},
		{"upload_url of another bucket", "bucket b-1\nregion cn-hangzhou\nupload_url https://b-2.oss-cn-hangzhou.aliyuncs.com", `upload_url: "https://b-2.oss-cn-hangzhou.aliyuncs.com" is bucket "b-2"'s address, not bucket "b-1"'s`, 4},
		{"plural top-level type", "allow_types images/* application/pdf", `allow_types: "images/*" has no top-level type "images"; write "image/*"`, 2},
		{"unknown top-level type", "allow_types document/pdf", `allow_types: "document/pdf": "document" is not a media type's top-level type`, 2},
		{"image/jpg", "allow_types image/png image/jpg", `allow_types: "image/jpg" is not the registered media type; browsers send "image/jpeg"`, 2},
		{"image/svg", "allow_types image/svg", `write that`, 2},
		{"text/js", "allow_types text/js", `"text/javascript"`, 2},
		{"audio/mp3", "allow_types audio/mp3", `"audio/mpeg"`, 2},
		{"video/mov", "allow_types video/mov", `"video/quicktime"`, 2},
		{"type pattern syntax", "allow_types image", `allow_types: "image" is not a media type or type/* pattern`, 2},
		{"default_type misspelled", "default_type image/jpg", `default_type: "image/jpg" is not the registered media type; browsers send "image/jpeg"`, 2},
		{"default_type top-level", "default_type images/png", `default_type: "images/png" has no top-level type "images"; write "image/png"`, 2},
		{"callback without url", "bucket b-1\ncallback {\nbody_type json\n}", "callback.url is required: without it the signing routes ask OSS for no callback", 3},
		{"form_fields value", "form_fields some", `form_fields: must be full or minimal, got "some"`, 2},
		{"form_fields minimal with storage_class", "storage_class IA\nform_fields minimal", "form_fields minimal: storage_class IA would need the form to send x-oss-storage-class", 3},
		{"storage_class after form_fields minimal", "form_fields minimal\nstorage_class Archive", "storage_class Archive would need the form to send x-oss-storage-class", 3},
		{"form_fields minimal with allow_types", "form_fields minimal\nallow_types image/*", "form_fields minimal: allow_types (image/*) would need the form to send Content-Type and x-oss-content-type", 3},
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

// What the new checks must let through.
func TestCaddyfileMistakeChecksAccept(t *testing.T) {
	for _, block := range []string{
		"region cn-hangzhou\nendpoint http://127.0.0.1:9000",
		"region cn-hangzhou\nendpoint https://oss-cn-hangzhou.aliyuncs.com",
		"region cn-hangzhou\nendpoint https://oss-cn-hangzhou-internal.aliyuncs.com",
		"region cn-hangzhou\nendpoint https://oss-accelerate.aliyuncs.com",
		"region ap-southeast-1\nendpoint https://oss-accelerate-overseas.aliyuncs.com",
		"region cn-hangzhou\nendpoint https://uploads.example.com",
		"region cn-hangzhou\nendpoint https://cn-hangzhou.oss.aliyuncs.com",
		"bucket b-1\nregion cn-hangzhou\nupload_url https://b-1.oss-cn-hangzhou.aliyuncs.com",
		"bucket b-1\nregion cn-hangzhou\nupload_url https://cdn.example.com",
		"region {env.OSS_REGION}\nendpoint https://oss-cn-shanghai.aliyuncs.com",
		"region me-west-9 unlisted",
		"region eu-central-1",
		"region cn-north-2-gov-1",
		"allow_types image/* application/pdf text/plain video/* audio/* font/woff2 model/gltf+json */*",
		"allow_types image/jpeg image/svg+xml image/x-png application/x-pdf",
		"default_type Image/PNG",
		"default_type {http.request.header.X-Type}",
		"callback {\nurl https://a.example/cb\n}",
		"callback {\nurl {env.CALLBACK_URL}\n}",
		"callback {\nverify_only\n}",
		"policy_path off\npresign_path off\nuppy_path off\ncallback {\n}",
		"form_fields full\nstorage_class IA\nallow_types image/*",
		"form_fields minimal\nclient_keys\ncallback {\nurl https://a.example/cb\nvar user {http.auth.user.id}\n}",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oss_upload {\n" + block + "\n}")); err != nil {
			t.Errorf("%q: %v", block, err)
		}
	}
}

// The same mistakes in a JSON config (or after placeholders expanded) are
// refused by Validate.
func TestValidateCatchesMistakes(t *testing.T) {
	base := func() Handler {
		return Handler{Bucket: "bucket-1", Region: "cn-hangzhou", AccessKeyID: "a", AccessKeySecret: "b",
			PolicyPath: "/p", PresignPath: "/s", STSPath: routeOff, CallbackPath: routeOff}
	}
	tests := []struct {
		name string
		edit func(*Handler)
		want string // "" means valid
	}{
		{"valid", func(h *Handler) {}, ""},
		{"region typo", func(h *Handler) { h.Region = "cn-hangzou" }, `did you mean "cn-hangzhou"?`},
		{"region unlisted", func(h *Handler) { h.Region, h.RegionUnlisted = "cn-hangzou", true }, ""},
		{"region endpoint form", func(h *Handler) { h.Region = "oss-cn-hangzhou" }, `region: use the region id ("cn-hangzhou")`},
		{"endpoint of another region", func(h *Handler) { h.Endpoint = "https://oss-cn-shanghai.aliyuncs.com" }, "is an endpoint of region cn-shanghai, but region is cn-hangzhou"},
		{"emulator endpoint", func(h *Handler) { h.Endpoint = "http://127.0.0.1:41234" }, ""},
		{"upload_url of another region", func(h *Handler) { h.UploadURL = "https://bucket-1.oss-cn-shenzhen.aliyuncs.com" }, "upload_url"},
		{"allow_types plural", func(h *Handler) { h.AllowTypes = []string{"images/*"} }, `write "image/*"`},
		{"allow_types misspelling", func(h *Handler) { h.AllowTypes = []string{"image/jpg"} }, `browsers send "image/jpeg"`},
		{"default_type misspelling", func(h *Handler) { h.DefaultType = "video/mov" }, `default_type: "video/mov" is not the registered media type; browsers send "video/quicktime"`},
		{"callback without url", func(h *Handler) { h.Callback = &CallbackConfig{} }, "callback.url is required: without it the signing routes"},
		{"callback without url, verify_only", func(h *Handler) { h.Callback = &CallbackConfig{VerifyOnly: true} }, ""},
		{"form_fields unknown", func(h *Handler) { h.FormFields = "none" }, `form_fields: must be full or minimal, got "none"`},
		{"form_fields minimal", func(h *Handler) { h.FormFields = formFieldsMinimal }, ""},
		{"form_fields minimal, provisioned default class", func(h *Handler) { h.FormFields, h.StorageClass = formFieldsMinimal, defaultStorageClass }, ""},
		{"form_fields minimal with storage_class", func(h *Handler) { h.FormFields, h.StorageClass = formFieldsMinimal, "IA" }, "storage_class IA would need"},
		{"form_fields minimal with allow_types", func(h *Handler) {
			h.FormFields, h.AllowTypes = formFieldsMinimal, []string{"image/*"}
		}, "allow_types (image/*) would need"},
		{"form_fields minimal, JSON storage_class Standard", func(h *Handler) {
			h.FormFields, h.StorageClass = formFieldsMinimal, defaultStorageClass
			h.configured = &configuredText{storageClass: "Standard"}
		}, "storage_class Standard would need"},
		// The confirm route: its callback block, and a body it can render.
		{"confirm", confirmed(nil), ""},
		{"confirm only", confirmed(func(h *Handler) { h.Callback.ConfirmOnly = true }), ""},
		{"confirm only, callback route off", confirmed(func(h *Handler) { h.Callback.ConfirmOnly, h.CallbackPath = true, routeOff }), ""},
		{"confirm without callback block", confirmed(func(h *Handler) { h.Callback, h.CallbackPath = nil, routeOff }), "confirm_path: the confirm route needs the callback block"},
		{"confirm with verify_only", confirmed(func(h *Handler) { h.Callback.VerifyOnly = true }), "which verify_only turns off"},
		{"confirm only without the route", confirmed(func(h *Handler) { h.Callback.ConfirmOnly, h.ConfirmPath = true, routeOff }), "callback.confirm_only: needs confirm_path"},
		{"confirm, every variable it fills", confirmed(func(h *Handler) {
			h.Callback.Body = "b=${bucket}&o=${object}&e=${etag}&s=${size}&m=${mimeType}&c=${crc64}&md5=${contentMd5}&u=${x:user}&k=const"
		}), ""},
		{"confirm, one it cannot", confirmed(func(h *Handler) { h.Callback.Body = "o=${object}&ip=${clientIp}&u=${x:user}" }), "callback.body: ${clientIp} come(s) only with an OSS callback"},
		{"confirm, several", confirmed(func(h *Handler) {
			h.Callback.BodyType = bodyTypeJSON
			h.Callback.Body = `{"o":${object},"w":${imageInfo.width},"op":${operation},"u":${x:user}}`
		}), "${imageInfo.width} ${operation} come(s) only"},
		{"callback-only variables without confirm", confirmed(func(h *Handler) {
			h.Callback.Body, h.ConfirmPath = "o=${object}&ip=${clientIp}&u=${x:user}", routeOff
		}), ""},
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

// confirmed is a TestValidateCatchesMistakes edit: a confirm route with
// its callback block, then edit.
func confirmed(edit func(*Handler)) func(*Handler) {
	return func(h *Handler) {
		h.CallbackPath, h.ConfirmPath = "/oss/callback", "/oss/confirm"
		h.Callback = &CallbackConfig{URL: "https://s.example.com/oss/callback", Vars: map[string]string{"user": "x"}}
		if edit != nil {
			edit(h)
		}
	}
}

// A placeholder that expanded to nothing is named, with the environment
// variable to set, when a JSON config is provisioned (as `caddy validate`
// and `caddy run` do).
func TestProvisionNamesEmptyPlaceholders(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"bucket", `{"bucket":"{env.CADDYOSS_TEST_UNSET_BUCKET}","region":"cn-hangzhou","access_key_id":"a","access_key_secret":"b"}`,
			"bucket is empty: {env.CADDYOSS_TEST_UNSET_BUCKET} expanded to an empty string; set CADDYOSS_TEST_UNSET_BUCKET"},
		{"region", `{"bucket":"b-1","region":"{env.CADDYOSS_TEST_UNSET_REGION}","access_key_id":"a","access_key_secret":"b"}`,
			"region is empty: {env.CADDYOSS_TEST_UNSET_REGION} expanded to an empty string; set CADDYOSS_TEST_UNSET_REGION"},
		{"half key pair", `{"bucket":"b-1","region":"cn-hangzhou","access_key_id":"a","access_key_secret":"{env.CADDYOSS_TEST_UNSET_SK}"}`,
			"access_key_secret is empty: {env.CADDYOSS_TEST_UNSET_SK} expanded to an empty string; set CADDYOSS_TEST_UNSET_SK"},
		{"role arn", `{"bucket":"b-1","region":"cn-hangzhou","access_key_id":"a","access_key_secret":"b","sts":{"role_arn":"{env.CADDYOSS_TEST_UNSET_ROLE}"}}`,
			"sts.role_arn is empty: {env.CADDYOSS_TEST_UNSET_ROLE} expanded to an empty string; set CADDYOSS_TEST_UNSET_ROLE"},
		{"callback url", `{"bucket":"b-1","region":"cn-hangzhou","access_key_id":"a","access_key_secret":"b","callback":{"url":"{env.CADDYOSS_TEST_UNSET_CB}"}}`,
			"callback.url is empty: {env.CADDYOSS_TEST_UNSET_CB} expanded to an empty string; set CADDYOSS_TEST_UNSET_CB"},
		{"two variables", `{"bucket":"{env.CADDYOSS_TEST_UNSET_A}{env.CADDYOSS_TEST_UNSET_B}","region":"cn-hangzhou","access_key_id":"a","access_key_secret":"b"}`,
			"set CADDYOSS_TEST_UNSET_A and CADDYOSS_TEST_UNSET_B"},
		{"unknown field stays an error", `{"bucket":"b-1","buckett":"x"}`, `unknown field "buckett"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := json.Unmarshal([]byte(tc.json), &h)
			if err == nil {
				h.storage = &certmagic.FileStorage{Path: t.TempDir()}
				ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
				defer cancel()
				defer func() { _ = h.Cleanup() }() // as Caddy does after a failed Provision
				err = h.Provision(ctx)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestClosestRegion(t *testing.T) {
	for in, want := range map[string]string{
		"cn-hangzou": "cn-hangzhou", "cn-hanghzou": "cn-hangzhou", "hangzhou": "", "cn-shangai": "cn-shanghai",
		"cn-hongkng": "cn-hongkong", "ap-southeast-11": "ap-southeast-1", "us-west1": "us-west-1",
		"eu-central-l": "eu-central-1", "CN-BEIJING": "cn-beijing", "cn-huhehaot": "cn-huhehaote", "xyz": "",
	} {
		if got := closestRegion(in); got != want {
			t.Errorf("closestRegion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEndpointRegion(t *testing.T) {
	for host, want := range map[string]string{
		"oss-cn-hangzhou.aliyuncs.com":           "cn-hangzhou",
		"oss-cn-hangzhou-internal.aliyuncs.com":  "cn-hangzhou",
		"OSS-CN-Shanghai.aliyuncs.com.":          "cn-shanghai",
		"cn-beijing.oss.aliyuncs.com":            "cn-beijing",
		"oss-accelerate.aliyuncs.com":            "",
		"oss-accelerate-overseas.aliyuncs.com":   "",
		"bucket.oss-cn-hangzhou.aliyuncs.com":    "",
		"sts.cn-hangzhou.aliyuncs.com":           "",
		"127.0.0.1":                              "",
		"uploads.example.com":                    "",
		"oss-cn-hangzhou.aliyuncs.com.evil.test": "",
	} {
		got, ok := endpointRegion(host)
		if got != want || ok != (want != "") {
			t.Errorf("endpointRegion(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}

// Every region id the listing has is one an OSS endpoint host can carry.
func TestRegionListShape(t *testing.T) {
	for id := range ossRegions {
		if r, ok := endpointRegion("oss-" + id + ".aliyuncs.com"); !ok || r != id {
			t.Errorf("%s: endpoint reads as %q", id, r)
		}
		if err := checkRegionID(id, false); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
}

// The refusal of an untrusted key URL names the URL, quoted and cut, and
// trusted_key.
func TestUntrustedKeyMessage(t *testing.T) {
	v := &callbackVerifier{}
	for raw, want := range map[string]string{
		"http://example.com/key.pem":           `callback public key URL is not trusted: "http://example.com/key.pem" is not on gosspublic.alicdn.com and no callback trusted_key is configured (add trusted_key <pem-file>`,
		"http://x/\x1b[31m":                    `"http://x/\x1b[31m" is not on`,
		"http://x/" + strings.Repeat("a", 300): `"http://x/` + strings.Repeat("a", 191) + `..." is not on`,
	} {
		_, err := v.keysFor(t.Context(), base64.StdEncoding.EncodeToString([]byte(raw)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v\nwant %q", raw, err, want)
		}
	}
}

// A second oss_upload without a matcher in the same block, whose routes an
// earlier one answers, is refused at adapt with both locations; handlers
// in other blocks, with matchers, or on other paths are not.
func TestCaddyfileShadowedHandler(t *testing.T) {
	const site = "http://localhost:8080 {\n"
	tests := []struct {
		name, caddyfile, want string // want "" means it adapts
	}{
		{"twice, defaults", site + "\toss_upload {\n\t\tbucket b-1\n\t}\n\toss_upload {\n\t\tbucket b-2\n\t}\n}\n",
			"this oss_upload is never reached: the oss_upload at Caddyfile:2, earlier in the same block and without a matcher, answers all its routes (policy_path /oss/post-policy, presign_path /oss/presign, uppy_path /oss/uppy); give them matchers (oss_upload /a/* {...}), put them in separate handle blocks, or give this one other paths, at Caddyfile:5"},
		{"partly shadowed", site + "\toss_upload {\n\t\tbucket b-1\n\t}\n\toss_upload {\n\t\tbucket b-2\n\t\tpolicy_path /other\n\t\tuppy_path off\n\t}\n}\n",
			"the oss_upload at Caddyfile:2, earlier in the same block and without a matcher, answers presign_path /oss/presign before this one sees them"},
		{"uppy routes below", site + "\toss_upload {\n\t\tbucket b-1\n\t\tpolicy_path off\n\t\tpresign_path off\n\t\tuppy_path /u\n\t}\n\toss_upload {\n\t\tbucket b-2\n\t\tpolicy_path /u/s3/params\n\t\tpresign_path /p\n\t\tuppy_path off\n\t}\n}\n",
			"answers policy_path /u/s3/params before this one sees them"},
		{"inside one handle block", site + "\thandle /x/* {\n\t\toss_upload {\n\t\t\tbucket b-1\n\t\t}\n\t\toss_upload {\n\t\t\tbucket b-2\n\t\t}\n\t}\n}\n",
			"this oss_upload is never reached: the oss_upload at Caddyfile:3"},
		{"other paths", site + "\toss_upload {\n\t\tbucket b-1\n\t}\n\toss_upload {\n\t\tbucket b-2\n\t\tpolicy_path /b/policy\n\t\tpresign_path /b/presign\n\t\tuppy_path /b/uppy\n\t}\n}\n", ""},
		{"matchers", site + "\toss_upload /a/* {\n\t\tbucket b-1\n\t}\n\toss_upload /b/* {\n\t\tbucket b-2\n\t}\n}\n", ""},
		{"one with a matcher", site + "\toss_upload /a/* {\n\t\tbucket b-1\n\t}\n\toss_upload {\n\t\tbucket b-2\n\t}\n}\n", ""},
		{"two sites", site + "\toss_upload {\n\t\tbucket b-1\n\t}\n}\nhttp://localhost:8081 {\n\toss_upload {\n\t\tbucket b-2\n\t}\n}\n", ""},
		{"two handle blocks", site + "\thandle /a/* {\n\t\toss_upload {\n\t\t\tbucket b-1\n\t\t}\n\t}\n\thandle {\n\t\toss_upload {\n\t\t\tbucket b-2\n\t\t}\n\t}\n}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.caddyfile), map[string]any{"filename": "Caddyfile"})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v\nwant %q", err, tc.want)
			}
		})
	}
	// The check can read the adapter's block.
	if _, ok := caddyfileBlock(httpcaddyfile.Helper{}); !ok {
		t.Error("the Caddyfile adapter's Helper has no parentBlock.Segments any more: the shadowed-handler check is skipped")
	}
}
