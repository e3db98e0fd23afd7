package ossemu_test

// STS AssumeRole: the refusals, the failure modes tests can switch on, and
// the role's policy limiting a session.

import (
	"strings"
	"testing"
	"time"

	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func TestSTSErrors(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	call := func(ak, sk string, req *sts.AssumeRoleRequest) error {
		_, err := stsClient(t, emu, ak, sk).AssumeRole(req)
		return err
	}
	base := func() *sts.AssumeRoleRequest {
		return &sts.AssumeRoleRequest{RoleArn: tea.String(testRole), RoleSessionName: tea.String("s-1")}
	}
	for _, tc := range []struct {
		name   string
		ak, sk string
		mutate func(*sts.AssumeRoleRequest)
		code   string
	}{
		{"wrong secret", testAK, "nope", nil, "SignatureDoesNotMatch"},
		{"unknown key", "nobody", "x", nil, "InvalidAccessKeyId.NotFound"},
		{"bad arn", testAK, testSK, func(r *sts.AssumeRoleRequest) { r.RoleArn = tea.String("arn:aws:iam::1:role/x") }, "InvalidParameter.RoleArn"},
		{"unknown role", testAK, testSK, func(r *sts.AssumeRoleRequest) { r.RoleArn = tea.String("acs:ram::1234567890123456:role/none") }, "EntityNotExist.Role"},
		{"session name", testAK, testSK, func(r *sts.AssumeRoleRequest) { r.RoleSessionName = tea.String("a b") }, "InvalidParameter.RoleSessionName"},
		{"too short", testAK, testSK, func(r *sts.AssumeRoleRequest) { r.DurationSeconds = tea.Int64(600) }, "InvalidParameter.DurationSeconds"},
		{"too long", testAK, testSK, func(r *sts.AssumeRoleRequest) { r.DurationSeconds = tea.Int64(3 * 3600) }, "InvalidParameter.DurationSeconds"},
		{"grammar", testAK, testSK, func(r *sts.AssumeRoleRequest) { r.Policy = tea.String(`{"Version":"1"}`) }, "InvalidParameter.PolicyGrammar"},
		{"size", testAK, testSK, func(r *sts.AssumeRoleRequest) { r.Policy = tea.String(strings.Repeat(" ", 2049)) }, "InvalidParameter.PolicySize"},
	} {
		req := base()
		if tc.mutate != nil {
			tc.mutate(req)
		}
		err := call(tc.ak, tc.sk, req)
		if err == nil || !strings.Contains(err.Error(), tc.code) {
			t.Errorf("%s: want %s, got %v", tc.name, tc.code, err)
		}
	}
	// Two hours is within the role's MaxSessionDuration.
	req := base()
	req.DurationSeconds = tea.Int64(7200)
	if err := call(testAK, testSK, req); err != nil {
		t.Errorf("7200s: %v", err)
	}
}

func TestSTSFailureModes(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	req := &sts.AssumeRoleRequest{RoleArn: tea.String(testRole), RoleSessionName: tea.String("s-1")}
	c := stsClient(t, emu, testAK, testSK)
	before := emu.STSCalls()
	emu.SetSTSMode(ossemu.STSDown, 0)
	if _, err := c.AssumeRole(req); err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("down: %v", err)
	}
	emu.SetSTSMode(ossemu.STSThrottled, 0)
	if _, err := c.AssumeRole(req); err == nil || !strings.Contains(err.Error(), "Throttling") {
		t.Errorf("throttled: %v", err)
	}
	emu.SetSTSMode(ossemu.STSSlow, 300*time.Millisecond)
	start := time.Now()
	if _, err := c.AssumeRole(req); err != nil {
		t.Errorf("slow: %v", err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Error("slow mode answered before its delay")
	}
	emu.SetSTSMode(ossemu.STSNormal, 0)
	if got := emu.STSCalls() - before; got < 3 {
		t.Errorf("STSCalls counted %d calls, want at least 3", got)
	}
}

func TestRolePolicyLimitsSession(t *testing.T) {
	emu := startEmu(t, ossemu.Options{Roles: []ossemu.Role{{ARN: testRole,
		Policy: `{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"acs:oss:*:*:examplebucket/*"},{"Effect":"Deny","Action":"oss:PutObject","Resource":"acs:oss:*:*:examplebucket/user/eric/secret*"}]}`}}})
	c := assumeRole(t, emu, sessionPolicy)
	b := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret), oss.SecurityToken(tea.StringValue(c.SecurityToken)))
	if err := b.PutObject("user/eric/ok.txt", strings.NewReader("x")); err != nil {
		t.Fatalf("allowed by both: %v", err)
	}
	err := b.PutObject("user/eric/secret.txt", strings.NewReader("x"))
	if st, code := serviceCode(t, err); st != 403 || code != "AccessDenied" {
		t.Fatalf("denied by the role: %d %s", st, code)
	}
}
