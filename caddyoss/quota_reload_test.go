package caddyoss

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// reloadQuotaBlock is the quota the reload tests turn on and off.
const reloadQuotaBlock = `
		quota {
			key {http.request.header.X-User}
			uploads 3 per 1h
		}`

// signPolicy asks the post-policy route for alice's policy of a 100-byte
// PNG and returns the answer and the form fields to send.
func signPolicy(t *testing.T, e *confirmEnv) (map[string]any, [][2]string) {
	t.Helper()
	status, p, body := e.get(t, "/oss/post-policy?filename=a.png&type=image/png&size=100", "alice")
	if status != http.StatusOK {
		t.Fatalf("post-policy: %d %s", status, body)
	}
	var fields [][2]string
	for k, v := range p["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	return p, fields
}

// Uploads signed before a reload that turns the quota on, or off, still
// reach the app once, through the callback and the confirm route: their
// bindings cover the variables they were issued with. An upload signed
// without a quota is not charged to the one turned on after it.
func TestQuotaAcrossReload(t *testing.T) {
	data := bytes.Repeat([]byte("r"), 100)
	withQuota := func(e *confirmEnv) string {
		return strings.Replace(e.config, "confirm_path "+cfConfirm, "confirm_path "+cfConfirm+reloadQuotaBlock, 1)
	}
	for _, tc := range []struct {
		name          string
		before, after func(e *confirmEnv) string
		fields        bool // the app receives oss_quota and oss_quota_key
	}{
		{"quota turned on", func(e *confirmEnv) string { return e.config }, withQuota, false},
		{"quota turned off", withQuota, func(e *confirmEnv) string { return e.config }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newConfirmEnv(t, confirmOpts{})
			e.tester.InitServer(tc.before(e), "caddyfile")
			p, fields := signPolicy(t, e)
			token := confirmOf(t, p["confirm"]).Token
			e.tester.InitServer(tc.after(e), "caddyfile")

			status, answer := e.postForm(t, p["url"].(string), fields, "image/png", data)
			if status != http.StatusOK {
				t.Fatalf("upload signed before the reload: OSS answered %d %s", status, answer)
			}
			key := p["key"].(string)
			got := e.deliveredOnce(t, key)[key]
			app := appFields(t, got.body)
			if _, ok := app[quotaIDVar]; ok != tc.fields {
				t.Errorf("the app received %s: %v, want %v (%s)", quotaIDVar, ok, tc.fields, got.body)
			}
			if code, body := e.confirm(t, key, token); code != http.StatusOK || !strings.Contains(body, "duplicate") {
				t.Errorf("confirm of the same upload after the reload: %d %s, want its duplicate answer", code, body)
			}
			e.deliveredOnce(t, key)

			if tc.name == "quota turned on" {
				// Only the next signing counts: 3 uploads per hour, one
				// reserved now.
				req, _ := http.NewRequest("GET", "http://localhost:9080/oss/post-policy?filename=b.png&type=image/png&size=100", nil)
				req.Header.Set("X-User", "alice")
				resp, err := e.tester.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("post-policy: %d", resp.StatusCode)
				}
				if left := resp.Header.Get("X-Quota-Remaining-Uploads"); left != "2" {
					t.Errorf("X-Quota-Remaining-Uploads %q after one reservation, want 2: the upload signed without a quota was charged", left)
				}
			}
		})
	}
}
