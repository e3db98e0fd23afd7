package doctor

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

const (
	bucket  = "examplebucket"
	ak      = "LTAI5tDoctorKey"
	sk      = "doctor-secret-0123456789"
	roleARN = "acs:ram::1234567890123456:role/uploader"
	site    = "https://uploads.example.com"
)

type akPair struct{ id, secret string }

func (p akPair) GetAccessKeyID() string     { return p.id }
func (p akPair) GetAccessKeySecret() string { return p.secret }
func (p akPair) GetSecurityToken() string   { return "" }

type provider struct{ akPair }

func (p provider) GetCredentials() oss.Credentials { return p.akPair }

// siteCORS is the rule docs/install.md asks for.
var siteCORS = []ossemu.CORSRule{{
	AllowedOrigins: []string{site}, AllowedMethods: []string{"PUT", "POST"},
	AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag", "x-oss-request-id"},
}}

// startEmu starts ossemu with a bucket set up as the docs ask: the site's
// CORS rule and Block Public Access on.
func startEmu(t *testing.T, opts ossemu.Options) *ossemu.Emulator {
	t.Helper()
	opts.Buckets = []string{bucket}
	if opts.AccessKeys == nil {
		opts.AccessKeys = map[string]string{ak: sk}
	}
	if opts.Roles == nil {
		opts.Roles = []ossemu.Role{{ARN: roleARN}}
	}
	if opts.CORS == nil {
		opts.CORS = siteCORS
	}
	emu, err := ossemu.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	emu.SetBlockPublicAccess(bucket, true)
	return emu
}

// assumeRoleWith is an AssumeRole call as the handler makes it, with the
// STS SDK.
func assumeRoleWith(emu *ossemu.Emulator, id, secret string) func(context.Context, string, string) (Credentials, error) {
	return func(_ context.Context, session, policy string) (Credentials, error) {
		c, err := sts.NewClient(&openapi.Config{
			AccessKeyId: tea.String(id), AccessKeySecret: tea.String(secret),
			Endpoint: tea.String(emu.Addr()), Protocol: tea.String("http"), RegionId: tea.String(emu.Region()),
		})
		if err != nil {
			return Credentials{}, err
		}
		resp, err := c.AssumeRole(&sts.AssumeRoleRequest{
			RoleArn: tea.String(roleARN), RoleSessionName: tea.String(session),
			DurationSeconds: tea.Int64(3600), Policy: tea.String(policy),
		})
		if err != nil {
			return Credentials{}, err
		}
		k := resp.Body.Credentials
		return Credentials{tea.StringValue(k.AccessKeyId), tea.StringValue(k.AccessKeySecret), tea.StringValue(k.SecurityToken)}, nil
	}
}

const sessionPolicy = `{"Statement":[{"Action":["oss:PutObject","oss:InitiateMultipartUpload","oss:UploadPart",` +
	`"oss:CompleteMultipartUpload","oss:AbortMultipartUpload","oss:ListParts"],"Effect":"Allow","Resource":[` +
	`"acs:oss:*:*:examplebucket/uploads/oss-doctor/*"]}],"Version":"1"}`

// target is a handler with every route on, bound callbacks and the STS
// route, signed with the key id/secret.
func target(emu *ossemu.Emulator, id, secret string) Target {
	return Target{
		Label: "server srv0, site uploads.example.com", Origins: []string{site},
		Bucket: bucket, Region: "cn-hangzhou", Endpoint: emu.Endpoint(), UploadURL: emu.Endpoint() + "/" + bucket,
		Credentials: provider{akPair{id, secret}}, CredentialsFrom: "access_key_id in the config",
		Prefix: "uploads/oss-doctor/", ContentType: "image/png",
		PostObject: true, Presign: true, Uppy: true,
		ClientACL:      "STS uploaders can set an object's ACL",
		BoundCallbacks: true,
		Callback:       &Callback{URL: site + "/oss/callback", SNI: true, SNIOption: "sni off"},
		STS: &STS{RoleARN: roleARN, SessionName: "oss-doctor", Policy: sessionPolicy, Duration: time.Hour,
			AssumeRole: assumeRoleWith(emu, id, secret)},
	}
}

func lookup(_ context.Context, host string) ([]net.IP, error) {
	switch host {
	case "uploads.example.com":
		return []net.IP{net.ParseIP("203.0.113.10")}, nil
	case "internal.example.com":
		return []net.IP{net.ParseIP("10.1.2.3")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func doctor(t *testing.T, tg Target) (string, Result) {
	t.Helper()
	var out bytes.Buffer
	res := Run(context.Background(), &out, []Target{tg}, Options{LookupIP: lookup, probeID: "0123456789abcdef"})
	return out.String(), res
}

// The passing report, line by line.
const passing = `oss_upload (server srv0, site uploads.example.com): bucket examplebucket, region cn-hangzhou
✓ credentials (access_key_id in the config)
✓ bucket examplebucket in region cn-hangzhou
✓ PutObject below uploads/oss-doctor/
✓ HeadObject (callback confirmation)
✓ DeleteObject (deleting uploads outside the limits)
✓ InitiateMultipartUpload (Uppy multipart)
✓ ListParts (Uppy multipart)
✓ AbortMultipartUpload (Uppy multipart)
✓ sts:AssumeRole acs:ram::1234567890123456:role/uploader
✓ PutObject with the STS credentials below uploads/oss-doctor/
✓ CORS: https://uploads.example.com may POST (PostObject)
✓ CORS: https://uploads.example.com may PUT with Content-Type (presigned PUT)
✓ CORS: https://uploads.example.com may PUT parts (Uppy multipart)
✓ CORS: https://uploads.example.com may PUT with the SDK's headers (STS)
✓ CORS: https://uploads.example.com may POST with the SDK's headers (STS multipart)
✓ CORS: ETag exposed to https://uploads.example.com (multipart)
✓ Block Public Access is on
✓ callback URL is https
✓ callback URL is public
✓ callback asks OSS for SNI

1 handler, no problems found: 20 passed, 0 failed, 0 skipped
`

func TestPassing(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	out, res := doctor(t, target(emu, ak, sk))
	checkReport(t, out, passing)
	if res.Failed != 0 {
		t.Fatalf("failed %d", res.Failed)
	}
	if keys := emu.Keys(bucket); len(keys) != 0 {
		t.Fatalf("the doctor left objects: %q", keys)
	}
}

// checkReport compares reports line by line.
func checkReport(t *testing.T, got, want string) {
	t.Helper()
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, gl, wl)
		}
	}
	if t.Failed() {
		t.Logf("whole report:\n%s", got)
	}
}

// replace returns the passing report with lines replaced: old line ->
// new lines (several joined with \n, none for "").
func replace(t *testing.T, summary string, edits map[string]string) string {
	t.Helper()
	out := passing
	for old, repl := range edits {
		if !strings.Contains(out, old+"\n") {
			t.Fatalf("no line %q in the passing report", old)
		}
		if repl == "" {
			out = strings.Replace(out, old+"\n", "", 1)
		} else {
			out = strings.Replace(out, old+"\n", repl+"\n", 1)
		}
	}
	i := strings.LastIndex(out, "\n1 handler")
	return out[:i] + "\n" + summary + "\n"
}

func TestWrongRegion(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	tg := target(emu, ak, sk)
	tg.Region = "cn-beijing"
	out, res := doctor(t, tg)
	want := strings.ReplaceAll(replace(t, "1 handler, problems found: 11 passed, 1 failed, 8 skipped", map[string]string{
		"✓ bucket examplebucket in region cn-hangzhou": "✗ bucket examplebucket in region cn-beijing: OSS says the bucket is in cn-hangzhou. " +
			"Fix: set region cn-hangzhou (and endpoint and upload_url, if you set them, to that region's)",
		"✓ PutObject below uploads/oss-doctor/":                          "- PutObject below uploads/oss-doctor/: skipped (the bucket is in another region)",
		"✓ HeadObject (callback confirmation)":                           "- HeadObject (callback confirmation): skipped (the bucket is in another region)",
		"✓ DeleteObject (deleting uploads outside the limits)":           "- DeleteObject (deleting uploads outside the limits): skipped (the bucket is in another region)",
		"✓ InitiateMultipartUpload (Uppy multipart)":                     "- InitiateMultipartUpload (Uppy multipart): skipped (the bucket is in another region)",
		"✓ ListParts (Uppy multipart)":                                   "- ListParts (Uppy multipart): skipped (the bucket is in another region)",
		"✓ AbortMultipartUpload (Uppy multipart)":                        "- AbortMultipartUpload (Uppy multipart): skipped (the bucket is in another region)",
		"✓ PutObject with the STS credentials below uploads/oss-doctor/": "- PutObject with the STS credentials below uploads/oss-doctor/: skipped (the bucket is in another region)",
		"✓ Block Public Access is on":                                    "- Block Public Access: skipped (the bucket is in another region)",
	}), "region cn-hangzhou\n✓ cred", "region cn-beijing\n✓ cred")
	checkReport(t, out, want)
	if res.Failed != 1 {
		t.Fatalf("failed %d", res.Failed)
	}
}

func TestKeyWithoutDeleteObject(t *testing.T) {
	emu := startEmu(t, ossemu.Options{
		KeyActions: map[string][]string{ak: {"oss:PutObject", "oss:GetObject", "oss:ListParts",
			"oss:AbortMultipartUpload", "oss:GetBucket*", "sts:AssumeRole"}},
	})
	out, res := doctor(t, target(emu, ak, sk))
	want := replace(t, "1 handler, problems found: 19 passed, 1 failed, 0 skipped", map[string]string{
		"✓ DeleteObject (deleting uploads outside the limits)": "✗ DeleteObject (deleting uploads outside the limits): " +
			"OSS refused DeleteObject: AccessDenied (You have no right to access this object because of RAM policy: oss:DeleteObject on " +
			"acs:oss:cn-hangzhou:1234567890123456:examplebucket/uploads/oss-doctor/.oss-doctor/0123456789abcdef/probe.txt is not allowed); " +
			"uploads outside the limits would stay in the bucket. Fix: allow oss:DeleteObject on acs:oss:*:*:examplebucket/uploads/* " +
			"to the server's RAM user or role, and delete uploads/oss-doctor/.oss-doctor/0123456789abcdef/probe.txt by hand",
		"✓ PutObject with the STS credentials below uploads/oss-doctor/": "✓ PutObject with the STS credentials below uploads/oss-doctor/\n" +
			"- cleanup: uploads/oss-doctor/.oss-doctor/0123456789abcdef/sts.txt is left in the bucket (DeleteObject: AccessDenied " +
			"(You have no right to access this object because of RAM policy: oss:DeleteObject on " +
			"acs:oss:cn-hangzhou:1234567890123456:examplebucket/uploads/oss-doctor/.oss-doctor/0123456789abcdef/sts.txt is not allowed)); delete it by hand",
	})
	checkReport(t, out, want)
	if res.Failed != 1 {
		t.Fatalf("failed %d", res.Failed)
	}
}

func TestCORS(t *testing.T) {
	noETag := []ossemu.CORSRule{{AllowedOrigins: []string{site}, AllowedMethods: []string{"PUT", "POST"},
		AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"x-oss-request-id"}}}
	emu := startEmu(t, ossemu.Options{CORS: noETag})
	out, _ := doctor(t, target(emu, ak, sk))
	checkReport(t, out, replace(t, "1 handler, problems found: 19 passed, 1 failed, 0 skipped", map[string]string{
		"✓ CORS: ETag exposed to https://uploads.example.com (multipart)": "✗ CORS: ETag exposed to https://uploads.example.com (multipart): " +
			"the rule that allows PUT from https://uploads.example.com does not expose ETag, which Uppy and ali-oss read after every part. " +
			"Fix: add ExposeHeader ETag to that CORS rule of bucket examplebucket",
	}))

	// Another origin than the site's: every preflight is refused.
	var buf bytes.Buffer
	res := Run(context.Background(), &buf, []Target{target(emu, ak, sk)},
		Options{LookupIP: lookup, Origin: "https://www.example.com", probeID: "0123456789abcdef"})
	rule := ". Fix: add a CORS rule to bucket examplebucket: AllowedOrigin https://www.example.com, AllowedMethod POST and PUT, " +
		"AllowedHeader *, ExposeHeader ETag (see docs/install.md)"
	sdk := "authorization, content-type, x-oss-date, x-oss-security-token, x-oss-user-agent, x-oss-callback, x-oss-callback-var"
	checkReport(t, buf.String(), replace(t, "1 handler, problems found: 14 passed, 5 failed, 1 skipped", map[string]string{
		"✓ CORS: https://uploads.example.com may POST (PostObject)": "✗ CORS: https://www.example.com may POST (PostObject): " +
			"OSS refused the browser's preflight (POST): 403 AccessForbidden" + rule,
		"✓ CORS: https://uploads.example.com may PUT with Content-Type (presigned PUT)": "✗ CORS: https://www.example.com may PUT with Content-Type (presigned PUT): " +
			"OSS refused the browser's preflight (PUT with content-type): 403 AccessForbidden" + rule,
		"✓ CORS: https://uploads.example.com may PUT parts (Uppy multipart)": "✗ CORS: https://www.example.com may PUT parts (Uppy multipart): " +
			"OSS refused the browser's preflight (PUT): 403 AccessForbidden" + rule,
		"✓ CORS: https://uploads.example.com may PUT with the SDK's headers (STS)": "✗ CORS: https://www.example.com may PUT with the SDK's headers (STS): " +
			"OSS refused the browser's preflight (PUT with " + sdk + "): 403 AccessForbidden" + rule,
		"✓ CORS: https://uploads.example.com may POST with the SDK's headers (STS multipart)": "✗ CORS: https://www.example.com may POST with the SDK's headers (STS multipart): " +
			"OSS refused the browser's preflight (POST with " + sdk + "): 403 AccessForbidden" + rule,
		"✓ CORS: ETag exposed to https://uploads.example.com (multipart)": "- CORS: ETag exposed to https://www.example.com (multipart): skipped (no PUT allowed)",
	}))
	if res.Failed != 5 {
		t.Fatalf("failed %d", res.Failed)
	}
}

func TestRoleCannotBeAssumed(t *testing.T) {
	// The role does not exist.
	emu := startEmu(t, ossemu.Options{Roles: []ossemu.Role{{ARN: "acs:ram::1234567890123456:role/other"}}})
	out, _ := doctor(t, target(emu, ak, sk))
	checkReport(t, out, replace(t, "1 handler, problems found: 18 passed, 1 failed, 1 skipped", map[string]string{
		"✓ sts:AssumeRole acs:ram::1234567890123456:role/uploader": "✗ sts:AssumeRole acs:ram::1234567890123456:role/uploader: " +
			"STS refused AssumeRole: EntityNotExist.Role (The specified Role not exists). " +
			"Fix: check sts.role_arn: no role acs:ram::1234567890123456:role/uploader in this account",
		"✓ PutObject with the STS credentials below uploads/oss-doctor/": "- PutObject with the STS credentials below uploads/oss-doctor/: skipped (no STS credentials)",
	}))

	// The server's key may not call AssumeRole.
	emu = startEmu(t, ossemu.Options{KeyActions: map[string][]string{ak: {"oss:*"}}})
	out, _ = doctor(t, target(emu, ak, sk))
	checkReport(t, out, replace(t, "1 handler, problems found: 18 passed, 1 failed, 1 skipped", map[string]string{
		"✓ sts:AssumeRole acs:ram::1234567890123456:role/uploader": "✗ sts:AssumeRole acs:ram::1234567890123456:role/uploader: " +
			"STS refused AssumeRole: NoPermission (You are not authorized to do this action. You should be authorized by RAM). " +
			"Fix: allow sts:AssumeRole on acs:ram::1234567890123456:role/uploader to the server's RAM user or role, and let the role's trust policy name its account",
		"✓ PutObject with the STS credentials below uploads/oss-doctor/": "- PutObject with the STS credentials below uploads/oss-doctor/: skipped (no STS credentials)",
	}))
}

func TestCallbackURL(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	for _, tc := range []struct {
		name, url string
		sni       bool
		edits     map[string]string
		summary   string
	}{
		{"http", "http://uploads.example.com/oss/callback", true, map[string]string{
			"✓ callback URL is https": "✗ callback URL is https: http://uploads.example.com/oss/callback is plain http: the callback crosses the network in clear, " +
				"and Caddy's automatic HTTPS redirects it, which OSS does not follow. Fix: use https://uploads.example.com/oss/callback",
			"✓ callback asks OSS for SNI": "- callback asks OSS for SNI: skipped (not https)",
		}, "1 handler, problems found: 18 passed, 1 failed, 1 skipped"},
		{"loopback", "https://127.0.0.1:8443/oss/callback", true, map[string]string{
			"✓ callback URL is public": "✗ callback URL is public: 127.0.0.1 is loopback: OSS does not call loopback or private addresses. " +
				"Fix: use a public DNS name of this site in callback url; OSS calls it from the internet (a site OSS cannot reach confirms its uploads instead: confirm_path, callback confirm_only)",
		}, "1 handler, problems found: 19 passed, 1 failed, 0 skipped"},
		{"localhost", "https://localhost/oss/callback", true, map[string]string{
			"✓ callback URL is public": "✗ callback URL is public: localhost is loopback: OSS refuses it. " +
				"Fix: use a public DNS name of this site in callback url; OSS calls it from the internet (a site OSS cannot reach confirms its uploads instead: confirm_path, callback confirm_only)",
		}, "1 handler, problems found: 19 passed, 1 failed, 0 skipped"},
		{"private", "https://internal.example.com/oss/callback", true, map[string]string{
			"✓ callback URL is public": "✗ callback URL is public: internal.example.com resolves to 10.1.2.3 (a private address): OSS does not call loopback or private addresses. " +
				"Fix: use a public DNS name of this site in callback url; OSS calls it from the internet (a site OSS cannot reach confirms its uploads instead: confirm_path, callback confirm_only)",
		}, "1 handler, problems found: 19 passed, 1 failed, 0 skipped"},
		{"no SNI", "https://uploads.example.com/oss/callback", false, map[string]string{
			"✓ callback asks OSS for SNI": "✗ callback asks OSS for SNI: OSS connects without a TLS server name, and Caddy picks its certificate by name, " +
				"so the handshake fails. Fix: remove sni off (or set default_sni for this site)",
		}, "1 handler, problems found: 19 passed, 1 failed, 0 skipped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := target(emu, ak, sk)
			tg.Callback.URL, tg.Callback.SNI = tc.url, tc.sni
			out, res := doctor(t, tg)
			checkReport(t, out, replace(t, tc.summary, tc.edits))
			if res.Failed != 1 {
				t.Fatalf("failed %d", res.Failed)
			}
		})
	}
}

// Block Public Access off while STS uploaders can choose the ACL; the
// routes that pin the ACL do not need it.
func TestBlockPublicAccess(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	emu.SetBlockPublicAccess(bucket, false)
	out, _ := doctor(t, target(emu, ak, sk))
	checkReport(t, out, replace(t, "1 handler, problems found: 19 passed, 1 failed, 0 skipped", map[string]string{
		"✓ Block Public Access is on": "✗ Block Public Access: it is off for bucket examplebucket, and STS uploaders can set an object's ACL " +
			"(x-oss-object-acl public-read). Fix: turn on Block Public Access for bucket examplebucket (OSS console: Permission Control, or PutBucketPublicAccessBlock)",
	}))
	tg := target(emu, ak, sk)
	tg.STS, tg.ClientACL = nil, ""
	out, res := doctor(t, tg)
	for _, line := range []string{"- sts:AssumeRole: skipped (the STS route is off)", "- Block Public Access: skipped (every route on pins the object ACL)"} {
		if !strings.Contains(out, "\n"+line+"\n") {
			t.Errorf("no line %q in\n%s", line, out)
		}
	}
	if res.Failed != 0 {
		t.Fatalf("failed %d:\n%s", res.Failed, out)
	}
}

// Refused credentials stop the bucket checks.
func TestBadCredentials(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	tg := target(emu, ak, "wrong-secret")
	out, res := doctor(t, tg)
	for _, line := range []string{
		"✗ credentials (access_key_id in the config): OSS refused them: SignatureDoesNotMatch (The request signature we calculated does not match the signature you provided. Check your key and signing method). Fix: check access_key_id and access_key_secret, or what the credential chain provides",
		"- PutObject below uploads/oss-doctor/: skipped (credentials refused)",
	} {
		if !strings.Contains(out, "\n"+line+"\n") {
			t.Errorf("no line %q in\n%s", line, out)
		}
	}
	if res.Failed < 2 { // the role's AssumeRole fails too
		t.Fatalf("failed %d:\n%s", res.Failed, out)
	}
}
