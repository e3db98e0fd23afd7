package caddyoss

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// startupLine runs logStartup on a provisioned handler and returns the one
// line it wrote, as JSON.
func startupLine(t *testing.T, h *Handler) (string, map[string]any) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	h.logger = zap.New(core)
	h.logStartup()
	entries := logs.TakeAll()
	if len(entries) != 1 {
		t.Fatalf("%d lines", len(entries))
	}
	return entries[0].Message, entries[0].ContextMap()
}

func TestStartupLine(t *testing.T) {
	t.Run("static key pair, every route", func(t *testing.T) {
		h := testHandler(t, func(h *Handler) {
			h.STS = &STSConfig{RoleARN: "acs:ram::1:role/r"}
			h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
			h.PresignPath = "/up/presign"
		})
		msg, f := startupLine(t, h)
		b, _ := json.Marshal(f)
		want := `{"bucket":"example-bucket","callbacks":"bound","credentials":"static","delivery":"queued","handler_id":"` + h.id + `","region":"cn-hangzhou",` +
			`"routes":{"callback":"/oss/callback","policy":"/oss/post-policy","presign":"/up/presign","sts":"/oss/sts","uppy":"/oss/uppy"},"signature_version":"v4"}`
		if msg != "oss_upload configured" || string(b) != want {
			t.Errorf("%s %s\nwant %s", msg, b, want)
		}
		if strings.Contains(string(b), "testid") || strings.Contains(string(b), "testsecret") {
			t.Error("the line names a key")
		}
	})
	t.Run("environment, verify_only", func(t *testing.T) {
		noCredentialsEnv(t)
		t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "envid")
		t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret")
		t.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "envtoken")
		h := testHandler(t, func(h *Handler) {
			h.AccessKeyID, h.AccessKeySecret, h.SignatureVersion = "", "", "v1"
			h.PolicyPath = routeOff
			h.Callback = &CallbackConfig{VerifyOnly: true}
		})
		_, f := startupLine(t, h)
		b, _ := json.Marshal(f)
		want := `{"bucket":"example-bucket","callbacks":"verify_only","credentials":"environment","delivery":"queued","handler_id":"` + h.id + `","region":"cn-hangzhou",` +
			`"routes":{"callback":"/oss/callback","presign":"/oss/presign"},"signature_version":"v1"}`
		if string(b) != want {
			t.Errorf("%s\nwant %s", b, want)
		}
		for _, secret := range []string{"envid", "envsecret", "envtoken"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("the line names %s", secret)
			}
		}
	})
	t.Run("no route needs credentials", func(t *testing.T) {
		noCredentialsEnv(t)
		h := testHandler(t, func(h *Handler) {
			h.AccessKeyID, h.AccessKeySecret = "", ""
			h.PolicyPath, h.PresignPath = routeOff, routeOff
			h.Callback = &CallbackConfig{VerifyOnly: true}
		})
		if _, f := startupLine(t, h); f["credentials"] != "unused" || f["callbacks"] != "verify_only" {
			t.Errorf("%v", f)
		}
	})
	t.Run("handler id and dead events", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			callback bool
			dead     []string // dead records to write, below the handler's events
			want     string   // the line's handler_id and dead_events, as JSON
		}{
			{"no callback route", false, nil, `{}`},
			{"no dead events", true, nil, `{"handler_id":"<id>"}`},
			{"dead events", true, []string{"dead/1893456000/e1", "dead/1893456000/e2", "dead/1893459600/e3", "pending/e4", "done/1893456000/e5"},
				`{"dead_events":3,"handler_id":"<id>"}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := testHandler(t, func(h *Handler) {
					if tc.callback {
						h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
					}
				})
				for _, k := range tc.dead {
					if err := h.storage.Store(t.Context(), eventsPrefix+"/"+h.id+"/"+k, []byte(`{}`)); err != nil {
						t.Fatal(err)
					}
				}
				_, f := startupLine(t, h)
				got := map[string]any{}
				for _, k := range []string{"handler_id", "dead_events"} {
					if v, ok := f[k]; ok {
						got[k] = v
					}
				}
				b, _ := json.Marshal(got)
				if want := strings.ReplaceAll(tc.want, "<id>", h.id); string(b) != want || len(h.id) != 32 {
					t.Errorf("%s, want %s", b, want)
				}
			})
		}
	})
}
