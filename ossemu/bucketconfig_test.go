package ossemu_test

import (
	"bytes"
	"strings"
	"testing"

	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func sdkClient(t *testing.T, emu *ossemu.Emulator, ak, sk string, opts ...oss.ClientOption) *oss.Client {
	t.Helper()
	opts = append([]oss.ClientOption{oss.ForcePathStyle(true), oss.Region(emu.Region())}, opts...)
	c, err := oss.New(emu.Endpoint(), ak, sk, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The bucket configuration API through the Go SDK: CORS rules set over the
// API answer preflights, GetBucketLocation and GetBucketInfo name the
// region, Block Public Access refuses public object ACLs.
func TestBucketConfigurationAPI(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	for _, v := range []oss.ClientOption{oss.AuthVersion(oss.AuthV1), oss.AuthVersion(oss.AuthV4)} {
		c := sdkClient(t, emu, testAK, testSK, v)
		loc, err := c.GetBucketLocation(testBucket)
		if err != nil || loc != "oss-cn-hangzhou" {
			t.Fatalf("GetBucketLocation = %q, %v", loc, err)
		}
		info, err := c.GetBucketInfo(testBucket)
		if err != nil || info.BucketInfo.Location != "oss-cn-hangzhou" || info.BucketInfo.Name != testBucket {
			t.Fatalf("GetBucketInfo = %+v, %v", info, err)
		}
	}
	c := sdkClient(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))

	// Default rules until the bucket gets its own.
	got, err := c.GetBucketCORS(testBucket)
	if err != nil || len(got.CORSRules) != 1 || got.CORSRules[0].AllowedOrigin[0] != "http://localhost:*" {
		t.Fatalf("GetBucketCORS = %+v, %v", got, err)
	}
	rule := oss.CORSRule{AllowedOrigin: []string{"https://www.example.com"}, AllowedMethod: []string{"PUT"},
		AllowedHeader: []string{"content-type"}, ExposeHeader: []string{"ETag"}, MaxAgeSeconds: 60}
	if err := c.SetBucketCORS(testBucket, []oss.CORSRule{rule}); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetBucketCORS(testBucket)
	if err != nil || len(got.CORSRules) != 1 || got.CORSRules[0].ExposeHeader[0] != "ETag" {
		t.Fatalf("GetBucketCORS = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		origin, method, headers string
		want                    int
	}{
		{"https://www.example.com", "PUT", "Content-Type", 200},
		{"https://www.example.com", "POST", "", 403},
		{"https://www.example.com", "PUT", "x-oss-date", 403},
		{"http://localhost:8080", "PUT", "", 403}, // the default rules no longer apply
	} {
		if got := preflight(t, emu, tc.origin, tc.method, tc.headers).StatusCode; got != tc.want {
			t.Errorf("preflight %+v = %d, want %d", tc, got, tc.want)
		}
	}
	if err := c.DeleteBucketCORS(testBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucketCORS(testBucket); err == nil {
		t.Fatal("GetBucketCORS after DeleteBucketCORS succeeded")
	} else if status, code := serviceCode(t, err); status != 404 || code != "NoSuchCORSConfiguration" {
		t.Fatalf("GetBucketCORS after delete: %d %s", status, code)
	}
	if got := preflight(t, emu, "https://www.example.com", "PUT", "").StatusCode; got != 403 {
		t.Errorf("preflight without rules = %d", got)
	}

	// Block Public Access, over the API (the SDK has no call for it).
	b, _ := c.Bucket(testBucket)
	bpa := func() string {
		resp, err := b.Do("GET", "", map[string]interface{}{"publicAccessBlock": nil}, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return buf.String()
	}
	if s := bpa(); !strings.Contains(s, "<BlockPublicAccess>false</BlockPublicAccess>") {
		t.Fatalf("GetBucketPublicAccessBlock = %s", s)
	}
	if err := b.PutObject("public", strings.NewReader("x"), oss.ObjectACL(oss.ACLPublicRead)); err != nil {
		t.Fatalf("public object without Block Public Access: %v", err)
	}
	body := `<PublicAccessBlockConfiguration><BlockPublicAccess>true</BlockPublicAccess></PublicAccessBlockConfiguration>`
	resp, err := b.Do("PUT", "", map[string]interface{}{"publicAccessBlock": nil}, nil, strings.NewReader(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := bpa(); !strings.Contains(s, "<BlockPublicAccess>true</BlockPublicAccess>") || !emu.BlockPublicAccess(testBucket) {
		t.Fatalf("GetBucketPublicAccessBlock after Put = %s", s)
	}
	err = b.PutObject("public2", strings.NewReader("x"), oss.ObjectACL(oss.ACLPublicRead))
	if status, code := serviceCode(t, err); status != 403 || code != "AccessDenied" {
		t.Fatalf("public object with Block Public Access: %d %s", status, code)
	}
	if err := b.PutObject("private", strings.NewReader("x"), oss.ObjectACL(oss.ACLPrivate)); err != nil {
		t.Fatalf("private object with Block Public Access: %v", err)
	}
}

// A permanent key limited to some actions is refused the others with
// 403 AccessDenied, and AssumeRole with NoPermission.
func TestKeyActions(t *testing.T) {
	emu := startEmu(t, ossemu.Options{
		AccessKeys: map[string]string{testAK: testSK, "limited": "limited-secret"},
		KeyActions: map[string][]string{"limited": {"oss:PutObject", "oss:Get*"}},
	})
	b := ossBucket(t, emu, "limited", "limited-secret", oss.AuthVersion(oss.AuthV4))
	if err := b.PutObject("k", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetObjectDetailedMeta("k"); err != nil {
		t.Fatal(err)
	}
	err := b.DeleteObject("k")
	if status, code := serviceCode(t, err); status != 403 || code != "AccessDenied" {
		t.Fatalf("DeleteObject: %d %s", status, code)
	}
	if _, err := sdkClient(t, emu, "limited", "limited-secret").GetBucketLocation(testBucket); err != nil {
		t.Fatalf("GetBucketLocation (oss:Get*): %v", err)
	}
	if _, err := sdkClient(t, emu, "limited", "limited-secret").GetBucketCORS(testBucket); err != nil {
		t.Fatalf("GetBucketCors (oss:Get*): %v", err)
	}
	_, err = stsClient(t, emu, "limited", "limited-secret").AssumeRole(&sts.AssumeRoleRequest{
		RoleArn: tea.String(testRole), RoleSessionName: tea.String("doctor")})
	if err == nil || !strings.Contains(err.Error(), "NoPermission") {
		t.Fatalf("AssumeRole without sts:AssumeRole: %v", err)
	}
	emu.SetKeyActions("limited", "sts:AssumeRole")
	if _, err := stsClient(t, emu, "limited", "limited-secret").AssumeRole(&sts.AssumeRoleRequest{
		RoleArn: tea.String(testRole), RoleSessionName: tea.String("doctor")}); err != nil {
		t.Fatalf("AssumeRole with sts:AssumeRole: %v", err)
	}
	if err := b.PutObject("k2", strings.NewReader("x")); err == nil {
		t.Fatal("PutObject allowed after SetKeyActions(sts:AssumeRole)")
	}
	emu.ClearKeyActions("limited")
	if err := b.DeleteObject("k"); err != nil {
		t.Fatal(err)
	}
	// The account's own key was never limited.
	if err := ossBucket(t, emu, testAK, testSK).DeleteObject("k"); err != nil {
		t.Fatal(err)
	}
}
