package ossemu_test

// STS sessions as OSS holds them: wildcards in RAM resources, AssumeRole
// signed with STS credentials, and how long a V4 URL may live.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// TestRAMResourceWildcards: in a RAM resource * and ? are wildcards, in an
// object key they are plain characters. A session allowed on u/* may
// write u/*x and u/?x like any key under u/.
func TestRAMResourceWildcards(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	for _, tc := range []struct {
		resource string // after acs:oss:*:*:examplebucket/
		key      string
		allowed  bool
	}{
		{"u/*", "u/*x", true},
		{"u/*", "u/?x", true},
		{"u/*", "u/*", true},
		{"u/*", "u/a*b?c", true},
		{"u/*", "v/*x", false},
		{"u/*/x", "u/*/x", true},
		{"u/*/x", "u/a/b/x", true},
		{"u/*/x", "u/*/y", false},
		{"q/?", "q/*", true},
		{"q/?", "q/?", true},
		{"q/?", "q/**", false},
		{"q/?", "q/é", true},
		{"q/?", "q/éé", false},
		{"a*b", "a*b", true},
		{"a*b", "ab", true},
		{"a*b", "a*c", false},
		{"lit", "lit*", false},
	} {
		t.Run(tc.resource+" "+tc.key, func(t *testing.T) {
			policy := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:PutObject","Resource":"acs:oss:*:*:examplebucket/` + tc.resource + `"}]}`
			c := assumeRole(t, emu, policy)
			b := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret),
				oss.SecurityToken(tea.StringValue(c.SecurityToken)))
			err := b.PutObject(tc.key, strings.NewReader("x"))
			if tc.allowed {
				if err != nil {
					t.Fatalf("PutObject %q under %q: %v", tc.key, tc.resource, err)
				}
				if _, ok := emu.Object(testBucket, tc.key); !ok {
					t.Fatalf("%q not stored", tc.key)
				}
				return
			}
			if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
				t.Fatalf("PutObject %q under %q: %d %s, want 403 AccessDenied", tc.key, tc.resource, st, code)
			}
		})
	}
}

// TestAssumeRoleWithSTSCredentials: AssumeRole signed with an STS
// AccessKeyId and its SecurityToken is answered like one signed with a
// permanent key, within what the calling session's policies allow; a
// missing, wrong or expired token is refused.
func TestAssumeRoleWithSTSCredentials(t *testing.T) {
	const (
		serverRole = "acs:ram::1234567890123456:role/ecs-server"
		narrowRole = "acs:ram::1234567890123456:role/no-sts"
	)
	emu := startEmu(t, ossemu.Options{Roles: []ossemu.Role{
		{ARN: testRole, MaxSessionDuration: 2 * time.Hour},
		{ARN: serverRole, Policy: `{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"acs:ram:*:*:role/uploader"}]}`},
		{ARN: narrowRole, Policy: `{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}`},
	}})
	issue := func(t *testing.T, arn string) *sts.AssumeRoleResponseBodyCredentials {
		t.Helper()
		resp, err := stsClient(t, emu, testAK, testSK).AssumeRole(&sts.AssumeRoleRequest{
			RoleArn: tea.String(arn), RoleSessionName: tea.String("server"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Body.Credentials
	}
	request := func() *sts.AssumeRoleRequest {
		return &sts.AssumeRoleRequest{
			RoleArn: tea.String(testRole), RoleSessionName: tea.String("browser-7"), DurationSeconds: tea.Int64(900),
			Policy: tea.String(sessionPolicy),
		}
	}
	codeOf := func(err error) string {
		var se *tea.SDKError
		if !errorsAs(err, &se) {
			return fmt.Sprint(err)
		}
		return tea.StringValue(se.Code)
	}
	for _, tc := range []struct {
		name   string
		caller string // role of the calling session
		token  func(c *sts.AssumeRoleResponseBodyCredentials) string
		expire bool
		code   string // "" for success
	}{
		{"role allowed to assume", serverRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, false, ""},
		{"role with no policy", testRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, false, ""},
		{"role not allowed sts:AssumeRole", narrowRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, false, "NoPermission"},
		{"no token", serverRole, func(*sts.AssumeRoleResponseBodyCredentials) string { return "" }, false, "MissingSecurityToken"},
		{"another token", serverRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) + "x" }, false, "InvalidSecurityToken.MismatchWithAccessKey"},
		{"expired token", serverRole, func(c *sts.AssumeRoleResponseBodyCredentials) string { return tea.StringValue(c.SecurityToken) }, true, "InvalidSecurityToken.Expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := issue(t, tc.caller)
			if tc.expire {
				emu.ExpireSessions()
			}
			resp, err := stsClientWithToken(t, emu, tea.StringValue(caller.AccessKeyId), tea.StringValue(caller.AccessKeySecret), tc.token(caller)).AssumeRole(request())
			if tc.code != "" {
				if codeOf(err) != tc.code {
					t.Fatalf("AssumeRole: %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("AssumeRole with STS credentials: %v", err)
			}
			c := resp.Body.Credentials
			b := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret), oss.SecurityToken(tea.StringValue(c.SecurityToken)))
			if err := b.PutObject("user/eric/chained.txt", strings.NewReader("x")); err != nil {
				t.Fatalf("upload with the chained credentials: %v", err)
			}
			err = b.PutObject("user/mallory/chained.txt", strings.NewReader("x"))
			if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
				t.Fatalf("the session policy does not hold: %d %s", st, code)
			}
		})
	}
	// A permanent key with a SecurityToken is no STS credential.
	_, err := stsClientWithToken(t, emu, testAK, testSK, "CAISforged").AssumeRole(request())
	if codeOf(err) != "InvalidSecurityToken.MismatchWithAccessKey" {
		t.Fatalf("permanent key with a token: %v", err)
	}
}

// TestPresignV4Lifetime: x-oss-expires runs from 1 s to 7 days for a URL
// signed with the account's keys and to 12 hours for one signed with STS
// credentials.
func TestPresignV4Lifetime(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	c := assumeRole(t, emu, sessionPolicy)
	permanent := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	temporary := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret),
		oss.AuthVersion(oss.AuthV4), oss.SecurityToken(tea.StringValue(c.SecurityToken)))
	for _, tc := range []struct {
		name    string
		b       *oss.Bucket
		expires int64
		ok      bool
	}{
		{"keys, 7 days", permanent, 604800, true},
		{"keys, 7 days and 1 s", permanent, 604801, false},
		{"STS, 12 hours", temporary, 43200, true},
		{"STS, 12 hours and 1 s", temporary, 43201, false},
		{"STS, 7 days", temporary, 604800, false},
		{"STS, 1 s", temporary, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.b.SignURL("user/eric/life.txt", oss.HTTPPut, tc.expires)
			if err != nil {
				t.Fatal(err)
			}
			status, code, resp, body := rawRequest(t, http.MethodPut, u, nil, "x")
			if tc.ok && status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			if !tc.ok && (status != 400 || code != "InvalidArgument" || resp.Header.Get("x-oss-ec") != "0002-00000232" ||
				!strings.Contains(body, "<ArgumentName>x-oss-expires</ArgumentName>")) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
}
