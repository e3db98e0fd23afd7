package ossemu_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// TestCallbackByHeader: PutObject with x-oss-callback through the Go SDK;
// form body with system and custom variables; the callback's JSON comes
// back to the uploader.
func TestCallbackByHeader(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	cs := newCallbackServer(t, 200, `{"ok":true,"id":7}`)
	b := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4))
	cb := b64JSON(map[string]string{
		"callbackUrl":  cs.URL + "/hooks/oss%20done?src=emu&x=1",
		"callbackBody": "bucket=${bucket}&object=${object}&size=${size}&mime=${mimeType}&etag=${etag}&uid=${x:uid}&op=${operation}",
	})
	var result []byte
	err := b.PutObject("dir/a b.txt", strings.NewReader("hello"), oss.ContentType("text/plain"),
		oss.Callback(cb), oss.CallbackVar(b64JSON(map[string]string{"x:uid": "42 &x"})), oss.CallbackResult(&result))
	if err != nil {
		t.Fatalf("PutObject with callback: %v", err)
	}
	if string(result) != `{"ok":true,"id":7}` {
		t.Fatalf("uploader got %q", result)
	}
	got := cs.last(t)
	verifyCallback(t, got)
	if got.uri != "/hooks/oss%20done?src=emu&x=1" {
		t.Errorf("callback URI %q", got.uri)
	}
	want := "bucket=examplebucket&object=dir%2Fa+b.txt&size=5&mime=text%2Fplain&etag=5D41402ABC4B2A76B9719D911017C592&uid=42+%26x&op=PutObject"
	if string(got.body) != want {
		t.Errorf("callback body\n%s\nwant\n%s", got.body, want)
	}
	if got.header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", got.header.Get("Content-Type"))
	}
}

// TestCallbackJSONByQuery: a presigned V1 URL carrying callback and
// callback-var in its query, JSON body type.
func TestCallbackJSONByQuery(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	cs := newCallbackServer(t, 200, `{"stored":true}`)
	b := ossBucket(t, emu, testAK, testSK)
	cb := b64JSON(map[string]string{
		"callbackUrl":      cs.URL + "/cb",
		"callbackBody":     `{"bucket":${bucket},"object":${object},"size":${size},"crc":${crc64},"vpc":${vpcId},"uid":${x:uid},"h":${imageInfo.height}}`,
		"callbackBodyType": "application/json",
	})
	signed, err := b.SignURL("q.txt", oss.HTTPPut, 60, oss.AddParam("callback", cb), oss.AddParam("callback-var", b64JSON(map[string]string{"x:uid": "u\"1"})))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", signed, strings.NewReader("12345678"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"stored":true}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	got := cs.last(t)
	verifyCallback(t, got)
	obj, _ := emu.Object(testBucket, "q.txt")
	var doc map[string]any
	if err := json.Unmarshal(got.body, &doc); err != nil {
		t.Fatalf("JSON callback body %s: %v", got.body, err)
	}
	if doc["bucket"] != testBucket || doc["object"] != "q.txt" || doc["size"] != 8.0 || doc["uid"] != `u"1` || doc["vpc"] != nil || doc["h"] != nil {
		t.Errorf("callback body %s", got.body)
	}
	if !strings.Contains(string(got.body), `"crc":`+jsonNumber(obj.CRC64)) {
		t.Errorf("crc64 in %s, want %d", got.body, obj.CRC64)
	}
}

func jsonNumber(u uint64) string {
	b, _ := json.Marshal(u)
	return string(b)
}

// TestCallbackFailures: the object stays, and the uploader gets 203
// CallbackFailed with the reason.
func TestCallbackFailures(t *testing.T) {
	for _, tc := range []struct {
		name, answer, reason string
		status               int
		delay                time.Duration
	}{
		{"status 500", `{"x":1}`, "Error status : 500.", 500, 0},
		{"not JSON", "<html>", "Response body is not valid json format.", 200, 0},
		{"timeout", `{}`, "reply timeout", 200, 800 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{CallbackTimeout: 300 * time.Millisecond})
			cs := newCallbackServer(t, tc.status, tc.answer)
			cs.delay = tc.delay
			b := ossBucket(t, emu, testAK, testSK)
			cb := b64JSON(map[string]string{"callbackUrl": cs.URL, "callbackBody": "object=${object}"})
			err := b.PutObject("f.txt", strings.NewReader("x"), oss.Callback(cb))
			var se oss.ServiceError
			if err == nil || !errorsAs(err, &se) || se.StatusCode != 203 || se.Code != "CallbackFailed" || !strings.Contains(se.Message, tc.reason) {
				t.Fatalf("want 203 CallbackFailed %q, got %v", tc.reason, err)
			}
			if _, ok := emu.Object(testBucket, "f.txt"); !ok {
				t.Fatal("the object must stay stored when the callback fails")
			}
		})
	}
}

// TestCallbackInvalid: a bad callback parameter stores nothing.
func TestCallbackInvalid(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK)
	for name, cb := range map[string]string{
		"not base64":  "%%%",
		"not JSON":    base64.StdEncoding.EncodeToString([]byte("{nope")),
		"empty body":  b64JSON(map[string]string{"callbackUrl": "http://127.0.0.1:1/"}),
		"no url":      b64JSON(map[string]string{"callbackBody": "a=${object}"}),
		"bad type":    b64JSON(map[string]string{"callbackUrl": "http://127.0.0.1:1/", "callbackBody": "x", "callbackBodyType": "text/plain"}),
		"unclosed ${": b64JSON(map[string]string{"callbackUrl": "http://127.0.0.1:1/", "callbackBody": "a=${object"}),
	} {
		err := b.PutObject("bad/"+name, strings.NewReader("x"), oss.Callback(cb))
		if st, code := serviceCode(t, err); st != 400 || code != "InvalidArgument" {
			t.Errorf("%s: %d %s", name, st, code)
		}
		if _, ok := emu.Object(testBucket, "bad/"+name); ok {
			t.Errorf("%s: object stored despite the bad callback", name)
		}
	}
}

func TestPostObjectForm(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	cs := newCallbackServer(t, 200, `{"posted":true}`)
	exp := time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
	policy := map[string]any{"expiration": exp, "conditions": []any{
		[]any{"starts-with", "$key", "up/"}, []any{"content-length-range", 1, 100},
		map[string]string{"bucket": testBucket},
	}}
	bucketURL := emu.Endpoint() + "/" + testBucket

	for _, tc := range []struct {
		status, want int
	}{{200, 200}, {201, 201}, {204, 204}, {0, 204}, {302, 204}} {
		fields := append(v1PostFields(t, policy), formField{"key", "up/${filename}"}, formField{"x-oss-meta-who", "eric"})
		if tc.status != 0 {
			fields = append(fields, formField{"success_action_status", itoa(tc.status)})
		}
		resp, body := postObject(t, bucketURL, append(fields, formField{"file", ""}), `C:\dir\pic.png`, "image/png", []byte("png!"))
		if resp.StatusCode != tc.want {
			t.Fatalf("success_action_status %d: got %d %s", tc.status, resp.StatusCode, body)
		}
		if tc.want == 201 && !strings.Contains(body, "<Key>up/pic.png</Key>") {
			t.Errorf("201 body %s", body)
		}
		if resp.Header.Get("ETag") == "" || resp.Header.Get("x-oss-request-id") == "" {
			t.Errorf("headers %v", resp.Header)
		}
	}
	obj, ok := emu.Object(testBucket, "up/pic.png")
	if !ok || string(obj.Data) != "png!" || obj.ContentType != "image/png" || obj.Meta.Get("X-Oss-Meta-Who") != "eric" {
		t.Fatalf("stored %+v", obj)
	}

	// Content-Type field beats the file part's type; names are
	// case-insensitive.
	fields := append(v1PostFields(t, policy), formField{"KEY", "up/typed"}, formField{"content-type", "text/plain"}, formField{"file", ""})
	fields[0].name = "ossaccesskeyid"
	if resp, body := postObject(t, bucketURL, fields, "a.bin", "application/octet-stream", []byte("txt")); resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if obj, _ := emu.Object(testBucket, "up/typed"); obj.ContentType != "text/plain" {
		t.Errorf("content type %q", obj.ContentType)
	}

	// Callback by form field with x: variables.
	fields = append(v1PostFields(t, policy), formField{"key", "up/cb.txt"},
		formField{"callback", b64JSON(map[string]string{"callbackUrl": cs.URL, "callbackBody": "o=${object}&u=${x:user}&op=${operation}"})},
		formField{"x:user", "ann"}, formField{"file", ""})
	resp, body := postObject(t, bucketURL, fields, "cb.txt", "text/plain", []byte("cb"))
	if resp.StatusCode != 200 || body != `{"posted":true}` {
		t.Fatalf("callback post: %d %s", resp.StatusCode, body)
	}
	got := cs.last(t)
	verifyCallback(t, got)
	if string(got.body) != "o=up%2Fcb.txt&u=ann&op=PostObject" {
		t.Errorf("callback body %s", got.body)
	}

	// Refusals: outside the prefix, too small, missing signature field.
	for _, tc := range []struct {
		name   string
		fields []formField
		data   string
		status int
		code   string
	}{
		{"prefix", append(v1PostFields(t, policy), formField{"key", "other/x"}, formField{"file", ""}), "x", 403, "AccessDenied"},
		{"empty file", append(v1PostFields(t, policy), formField{"key", "up/empty"}, formField{"file", ""}), "", 400, "EntityTooSmall"},
		{"no Signature", append(v1PostFields(t, policy)[:2], formField{"key", "up/nosig"}, formField{"file", ""}), "x", 400, "InvalidArgument"},
		{"no file", append(v1PostFields(t, policy), formField{"key", "up/nofile"}), "", 400, "IncorrectNumberOfFilesInPOSTRequest"},
	} {
		resp, body := postObject(t, bucketURL, tc.fields, "x", "text/plain", []byte(tc.data))
		if resp.StatusCode != tc.status || !strings.Contains(body, "<Code>"+tc.code+"</Code>") {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
}

func TestCORS(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	preflight := func(origin, method, headers string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", emu.Endpoint()+"/"+testBucket+"/k", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight("http://localhost:8080", "PUT", "Content-Type, x-oss-date")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8080" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
		resp.Header.Get("Access-Control-Allow-Headers") != "content-type, x-oss-date" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example", "PUT", ""); resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %d", resp.StatusCode)
	}
	if resp := preflight("http://localhost:8080", "PATCH", ""); resp.StatusCode != 403 {
		t.Fatalf("method not allowed: %d", resp.StatusCode)
	}
	// Actual requests carry the CORS answer, errors included.
	req, _ := http.NewRequest("GET", emu.Endpoint()+"/"+testBucket+"/missing", nil)
	req.Header.Set("Origin", "http://127.0.0.1:3000")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:3000" || r2.StatusCode != 403 {
		t.Fatalf("actual request: %d %v", r2.StatusCode, r2.Header)
	}
}

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

func TestErrorShape(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	resp, err := http.Get(emu.Endpoint() + "/nosuchbucket/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Code, Message, RequestId, HostId string
	}
	if err := xmlUnmarshal(body, &e); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if resp.StatusCode != 404 || e.Code != "NoSuchBucket" || len(e.RequestId) != 24 || e.RequestId != resp.Header.Get("x-oss-request-id") || e.HostId == "" {
		t.Fatalf("%d %+v", resp.StatusCode, e)
	}
	// HEAD errors carry the XML in x-oss-err.
	b := ossBucket(t, emu, testAK, testSK)
	if _, err := b.GetObjectDetailedMeta("missing"); err == nil {
		t.Fatal("HEAD of a missing key succeeded")
	} else if st, _ := serviceCode(t, err); st != 404 {
		t.Fatalf("HEAD missing: %v", err)
	}
}

// TestPostObjectACLAndStorageClass: the x-oss-object-acl and
// x-oss-storage-class form fields (names in any case) are stored on the
// object, the ACL field beats the header of the same name, and values
// outside OSS's lists are refused with 400 InvalidArgument, storing nothing.
func TestPostObjectACLAndStorageClass(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	policy := map[string]any{"expiration": policyExpiring(), "conditions": []any{[]any{"starts-with", "$key", "attrs/"}}}
	bucketURL := emu.Endpoint() + "/" + testBucket
	acl := func(v string) []formField { return []formField{{"x-oss-object-acl", v}} }
	class := func(v string) []formField { return []formField{{"x-oss-storage-class", v}} }
	for i, tc := range []struct {
		name       string
		fields     []formField
		header     http.Header
		acl, class string // as stored; empty when the upload is refused
	}{
		{"neither", nil, nil, "default", "Standard"},
		{"acl default", acl("default"), nil, "default", "Standard"},
		{"acl private", acl("private"), nil, "private", "Standard"},
		{"acl public-read", acl("public-read"), nil, "public-read", "Standard"},
		{"acl public-read-write", acl("public-read-write"), nil, "public-read-write", "Standard"},
		{"acl field name case", []formField{{"X-OSS-Object-Acl", "public-read"}}, nil, "public-read", "Standard"},
		{"acl by header", nil, http.Header{"X-Oss-Object-Acl": {"public-read"}}, "public-read", "Standard"},
		{"acl form beats header", acl("private"), http.Header{"X-Oss-Object-Acl": {"public-read-write"}}, "private", "Standard"},
		{"acl value case", acl("Public-Read"), nil, "", ""},
		{"acl unknown", acl("public"), nil, "", ""},
		{"acl empty", acl(""), nil, "", ""},
		{"acl bad header", nil, http.Header{"X-Oss-Object-Acl": {"authenticated-read"}}, "", ""},
		{"class Standard", class("Standard"), nil, "default", "Standard"},
		{"class IA", class("IA"), nil, "default", "IA"},
		{"class Archive", class("Archive"), nil, "default", "Archive"},
		{"class ColdArchive", class("ColdArchive"), nil, "default", "ColdArchive"},
		{"class DeepColdArchive", class("DeepColdArchive"), nil, "default", "DeepColdArchive"},
		{"class value case", class("deepcoldarchive"), nil, "default", "DeepColdArchive"},
		{"class field name case", []formField{{"X-Oss-Storage-Class", "ia"}}, nil, "default", "IA"},
		{"class unknown", class("Glacier"), nil, "", ""},
		{"class empty", class(""), nil, "", ""},
		{"both", append(acl("public-read"), class("Archive")...), nil, "public-read", "Archive"},
	} {
		key := "attrs/" + itoa(i)
		fields := append(v1PostFields(t, policy), formField{"key", key})
		fields = append(append(fields, tc.fields...), formField{"file", ""})
		resp, body := postObjectWithHeader(t, bucketURL, tc.header, fields, "a.txt", "text/plain", []byte("x"))
		obj, stored := emu.Object(testBucket, key)
		if tc.acl == "" {
			if resp.StatusCode != 400 || !strings.Contains(body, "<Code>InvalidArgument</Code>") || stored {
				t.Errorf("%s: want 400 InvalidArgument and nothing stored, got %d %s (stored %v)", tc.name, resp.StatusCode, body, stored)
			}
			continue
		}
		if resp.StatusCode != 204 || !stored || obj.ACL != tc.acl || obj.StorageClass != tc.class {
			t.Errorf("%s: %d %s; stored ACL %q class %q, want %q %q", tc.name, resp.StatusCode, body, obj.ACL, obj.StorageClass, tc.acl, tc.class)
		}
	}
}

// TestPostPolicyObjectFields: policy conditions on x-oss-object-acl,
// x-oss-storage-class and x-oss-content-type are evaluated like any other
// field, and a condition on a field the form leaves out fails (a header of
// that name does not stand in for it).
func TestPostPolicyObjectFields(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	bucketURL := emu.Endpoint() + "/" + testBucket
	pinDefault := []any{"eq", "$x-oss-object-acl", "default"}
	for i, tc := range []struct {
		name        string
		condition   any
		fields      []formField
		header      http.Header
		ok          bool
		contentType string // stored, when ok and not empty
	}{
		{"pinned acl sent", pinDefault, []formField{{"x-oss-object-acl", "default"}}, nil, true, ""},
		{"pinned acl other", pinDefault, []formField{{"x-oss-object-acl", "public-read"}}, nil, false, ""},
		{"pinned acl missing", pinDefault, nil, nil, false, ""},
		{"pinned acl by header", pinDefault, nil, http.Header{"X-Oss-Object-Acl": {"default"}}, false, ""},
		{"simple acl", map[string]string{"x-oss-object-acl": "private"}, []formField{{"x-oss-object-acl", "private"}}, nil, true, ""},
		{"simple acl value case", map[string]string{"x-oss-object-acl": "private"}, []formField{{"x-oss-object-acl", "PRIVATE"}}, nil, false, ""},
		{"condition name case", []any{"eq", "$X-OSS-Object-Acl", "private"}, []formField{{"x-oss-object-acl", "private"}}, nil, true, ""},
		{"not-in acl allowed", []any{"not-in", "$x-oss-object-acl", []string{"public-read", "public-read-write"}}, []formField{{"x-oss-object-acl", "private"}}, nil, true, ""},
		{"not-in acl refused", []any{"not-in", "$x-oss-object-acl", []string{"public-read", "public-read-write"}}, []formField{{"x-oss-object-acl", "public-read-write"}}, nil, false, ""},
		{"not-in acl missing", []any{"not-in", "$x-oss-object-acl", []string{"public-read", "public-read-write"}}, nil, nil, false, ""},
		{"in class allowed", []any{"in", "$x-oss-storage-class", []string{"Standard", "IA"}}, []formField{{"x-oss-storage-class", "IA"}}, nil, true, ""},
		{"in class refused", []any{"in", "$x-oss-storage-class", []string{"Standard", "IA"}}, []formField{{"x-oss-storage-class", "Archive"}}, nil, false, ""},
		{"in class missing", []any{"in", "$x-oss-storage-class", []string{"Standard", "IA"}}, nil, nil, false, ""},
		{"starts-with type allowed", []any{"starts-with", "$x-oss-content-type", "image/"}, []formField{{"x-oss-content-type", "image/png"}}, nil, true, "image/png"},
		{"starts-with type refused", []any{"starts-with", "$x-oss-content-type", "image/"}, []formField{{"x-oss-content-type", "text/html"}}, nil, false, ""},
		{"starts-with type missing", []any{"starts-with", "$x-oss-content-type", "image/"}, []formField{{"Content-Type", "image/png"}}, nil, false, ""},
		// A condition on Content-Type says nothing of x-oss-content-type,
		// which wins when both are sent.
		{"content-type pinned, x-oss-content-type not", []any{"eq", "$content-type", "image/png"},
			[]formField{{"Content-Type", "image/png"}, {"x-oss-content-type", "text/html"}}, nil, true, "text/html"},
	} {
		key := "pol/" + itoa(i)
		policy := map[string]any{"expiration": policyExpiring(), "conditions": []any{tc.condition}}
		fields := append(v1PostFields(t, policy), formField{"key", key})
		fields = append(append(fields, tc.fields...), formField{"file", ""})
		resp, body := postObjectWithHeader(t, bucketURL, tc.header, fields, "a.bin", "application/octet-stream", []byte("x"))
		obj, stored := emu.Object(testBucket, key)
		if !tc.ok {
			if resp.StatusCode != 403 || !strings.Contains(body, "<Code>AccessDenied</Code>") ||
				!strings.Contains(body, "Invalid according to Policy: Policy Condition failed: ") || stored {
				t.Errorf("%s: want 403 Policy Condition failed and nothing stored, got %d %s (stored %v)", tc.name, resp.StatusCode, body, stored)
			}
			continue
		}
		if resp.StatusCode != 204 || !stored {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		} else if tc.contentType != "" && obj.ContentType != tc.contentType {
			t.Errorf("%s: stored content type %q, want %q", tc.name, obj.ContentType, tc.contentType)
		}
	}
	// The refusal names the condition as OSS echoes it.
	policy := map[string]any{"expiration": policyExpiring(), "conditions": []any{pinDefault}}
	fields := append(v1PostFields(t, policy), formField{"key", "pol/echo"}, formField{"x-oss-object-acl", "public-read"}, formField{"file", ""})
	if _, body := postObject(t, bucketURL, fields, "a.bin", "", []byte("x")); !strings.Contains(body, `["eq", "$x-oss-object-acl", "default"]`) {
		t.Errorf("refusal does not echo the condition: %s", body)
	}
}

// TestPostObjectContentType: x-oss-content-type beats the Content-Type
// field, which beats the file part's type; with none the object is
// application/octet-stream. GET answers the stored type.
func TestPostObjectContentType(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	policy := map[string]any{"expiration": policyExpiring(), "conditions": []any{[]any{"starts-with", "$key", "ct/"}}}
	bucketURL := emu.Endpoint() + "/" + testBucket
	b := ossBucket(t, emu, testAK, testSK)
	for i, tc := range []struct {
		name     string
		fields   []formField
		fileType string
		want     string
	}{
		{"all three", []formField{{"x-oss-content-type", "image/png"}, {"Content-Type", "text/plain"}}, "application/pdf", "image/png"},
		{"field name case", []formField{{"X-OSS-Content-Type", "image/png"}, {"content-type", "text/plain"}}, "application/pdf", "image/png"},
		{"Content-Type and file", []formField{{"Content-Type", "text/plain"}}, "application/pdf", "text/plain"},
		{"file only", nil, "application/pdf", "application/pdf"},
		{"none", nil, "", "application/octet-stream"},
	} {
		key := "ct/" + itoa(i)
		fields := append(v1PostFields(t, policy), formField{"key", key})
		fields = append(append(fields, tc.fields...), formField{"file", ""})
		if resp, body := postObject(t, bucketURL, fields, "f", tc.fileType, []byte("x")); resp.StatusCode != 204 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
		meta, err := b.GetObjectDetailedMeta(key)
		if err != nil {
			t.Fatalf("%s: HeadObject: %v", tc.name, err)
		}
		if got := meta.Get("Content-Type"); got != tc.want {
			t.Errorf("%s: Content-Type %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestAnonymousRead: buckets are private, so an unsigned GET or HEAD reads
// only objects whose ACL is public-read or public-read-write; default and
// private objects and missing keys answer 403 AccessDenied. Any signature
// present is checked, even on a public object, and public-read does not let
// anyone write.
func TestAnonymousRead(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK)
	if err := emu.PutObject(testBucket, "seeded", []byte("seed"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if obj, _ := emu.Object(testBucket, "seeded"); obj.ACL != "default" || obj.StorageClass != "Standard" {
		t.Fatalf("seeded object ACL %q class %q", obj.ACL, obj.StorageClass)
	}
	for _, acl := range []oss.ACLType{oss.ACLDefault, oss.ACLPrivate, oss.ACLPublicRead, oss.ACLPublicReadWrite} {
		if err := b.PutObject("acl/"+string(acl), strings.NewReader("body of "+string(acl)),
			oss.ObjectACL(acl), oss.ObjectStorageClass(oss.StorageIA)); err != nil {
			t.Fatalf("PutObject %s: %v", acl, err)
		}
	}
	objectURL := func(key string) string { return emu.Endpoint() + "/" + testBucket + "/" + key }
	for _, tc := range []struct {
		key    string
		public bool
	}{
		{"seeded", false}, {"missing", false},
		{"acl/default", false}, {"acl/private", false},
		{"acl/public-read", true}, {"acl/public-read-write", true},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			status, code, resp, body := rawRequest(t, method, objectURL(tc.key), nil, "")
			if !tc.public {
				if status != 403 || code != "AccessDenied" {
					t.Errorf("anonymous %s %s: %d %s, want 403 AccessDenied", method, tc.key, status, code)
				}
				continue
			}
			if status != 200 || resp.Header.Get("x-oss-storage-class") != "IA" || resp.Header.Get("x-oss-object-acl") != "" {
				t.Errorf("anonymous %s %s: %d %v", method, tc.key, status, resp.Header)
			}
			if method == http.MethodGet && body != "body of "+strings.TrimPrefix(tc.key, "acl/") {
				t.Errorf("anonymous GET %s: body %q", tc.key, body)
			}
		}
	}
	// Signed reads of private objects work as before.
	if rc, err := b.GetObject("acl/private"); err != nil {
		t.Fatalf("signed GET of a private object: %v", err)
	} else {
		rc.Close()
	}

	public := objectURL("acl/public-read")
	wrongKey, err := ossBucket(t, emu, testAK, "not-the-secret").SignURL("acl/public-read", oss.HTTPGet, 60)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		header    http.Header
		code      string
	}{
		{"URL signed with a wrong secret", wrongKey, nil, "SignatureDoesNotMatch"},
		{"V1 URL missing its Signature", public + "?OSSAccessKeyId=" + testAK + "&Expires=9999999999", nil, "AccessDenied"},
		{"V4 credential without signature", public + "?x-oss-credential=" + testAK + "%2F20250101%2Fcn-hangzhou%2Foss%2Faliyun_v4_request", nil, "AccessDenied"},
		{"bad Authorization header", public, http.Header{"Authorization": {"OSS " + testAK + ":bm9wZQ=="},
			"Date": {time.Now().UTC().Format(http.TimeFormat)}}, "SignatureDoesNotMatch"},
	} {
		if status, code, _, body := rawRequest(t, http.MethodGet, tc.url, tc.header, ""); status != 403 || code != tc.code {
			t.Errorf("%s on a public-read object: %d %s, want 403 %s", tc.name, status, body, tc.code)
		}
	}
	// public-read is read-only for anonymous users.
	if status, code, _, _ := rawRequest(t, http.MethodPut, public, nil, "overwritten"); status != 403 || code != "AccessDenied" {
		t.Errorf("anonymous PUT over a public-read object: %d %s", status, code)
	}
	if obj, _ := emu.Object(testBucket, "acl/public-read"); string(obj.Data) != "body of public-read" {
		t.Errorf("public-read object now holds %q", obj.Data)
	}
}
