package caddyoss

import (
	"strings"
	"testing"
)

// 7. Values with meaning to RAM or OSS in what a request expands (prefix,
// session name, callback variable) get nothing signed. Each round leaves
// one of the three as the only expanded value, so each check is tested on
// its own.
func TestSecurityPlaceholderValues(t *testing.T) {
	env := newSecEnv(t, "")
	wild := []string{"*", "a*", "b?b", "?", "${filename}", "$", "a$b", "${x:user}", "a\tb", "a\u0085b", "\u009f"}
	pathy := []string{"..", "a/../b", ".", "/abs", `a\b`}
	const (
		prefixTpl  = "key_prefix uploads/{http.request.header.X-User}/"
		sessionTpl = "session_name web-{http.request.header.X-User}"
		varTpl     = "var user {http.request.header.X-User}"
	)
	static := func(config string, keep string) string {
		for _, r := range [][2]string{{prefixTpl, "key_prefix uploads/"}, {sessionTpl, "session_name web"}, {varTpl, "var user fixed"}} {
			if r[0] != keep {
				config = strings.Replace(config, r[0], r[1], 1)
			}
		}
		return config
	}
	allRoutes := []string{"/oss/post-policy?filename=a.png&type=image/png", "/oss/presign?filename=a.png&type=image/png",
		"/oss/uppy/s3/params?filename=a.png&type=image/png", "/oss/sts"}
	rounds := []struct {
		name   string
		config string
		values []string
		routes []string
	}{
		{"all expanded", env.config, append(wild, pathy...), allRoutes},
		{"prefix only", static(env.config, prefixTpl), append(wild, pathy...), allRoutes},
		{"session name only", static(env.config, sessionTpl), wild, allRoutes[3:]},
		{"callback var only", static(env.config, varTpl), wild, allRoutes},
	}
	calls := env.emu.STSCalls()
	for _, round := range rounds {
		env.tester.InitServer(round.config, "caddyfile")
		for _, user := range round.values {
			for _, route := range round.routes {
				status, out, body := env.get(t, route, user)
				if status != 403 && status != 400 {
					t.Errorf("%s: %s as %q: %d %s", round.name, route, user, status, body)
				}
				for _, k := range []string{"policy", "url", "fields", "AccessKeyId", "SecurityToken", "signature"} {
					if _, ok := out[k]; ok {
						t.Errorf("%s: %s as %q signed something: %s", round.name, route, user, body)
					}
				}
			}
		}
		// The same routes sign for a plain user.
		for _, route := range round.routes {
			if status, _, body := env.get(t, route, "carol"); status != 200 {
				t.Errorf("%s: %s as carol: %d %s", round.name, route, status, body)
			}
		}
	}
	if n := env.emu.STSCalls() - calls; n != len(rounds) {
		t.Errorf("AssumeRole was called %d times, want %d (once per round, for carol)", n, len(rounds))
	}
	if len(env.app.all()) != 0 {
		t.Error("a signing request reached the app")
	}
}
