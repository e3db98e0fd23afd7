package ossemu_test

// PostObject forms: fields, success_action_status, callbacks by form field,
// the object's ACL, storage class and content type, and policy conditions on
// them.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

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

// TestPostObjectBlockPublicAccess: on a bucket whose Block Public Access
// is on, a PostObject asking for a public object, by form field or by
// header, is refused with 403 AccessDenied and stores nothing; the form
// field wins over the header either way, as it does for the ACL stored.
func TestPostObjectBlockPublicAccess(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	emu.SetBlockPublicAccess(testBucket, true)
	policy := map[string]any{"expiration": policyExpiring(), "conditions": []any{[]any{"starts-with", "$key", "bpa/"}}}
	bucketURL := emu.Endpoint() + "/" + testBucket
	acl := func(v string) []formField { return []formField{{"x-oss-object-acl", v}} }
	for i, tc := range []struct {
		name    string
		fields  []formField
		header  http.Header
		refused bool
	}{
		{"field public-read", acl("public-read"), nil, true},
		{"field public-read-write", acl("public-read-write"), nil, true},
		{"field name case", []formField{{"X-Oss-Object-Acl", "public-read"}}, nil, true},
		{"header public-read", nil, http.Header{"X-Oss-Object-Acl": {"public-read"}}, true},
		{"field public beats private header", acl("public-read"), http.Header{"X-Oss-Object-Acl": {"private"}}, true},
		{"field private beats public header", acl("private"), http.Header{"X-Oss-Object-Acl": {"public-read"}}, false},
		{"field private", acl("private"), nil, false},
		{"field default", acl("default"), nil, false},
		{"no acl", nil, nil, false},
	} {
		key := "bpa/" + itoa(i)
		fields := append(v1PostFields(t, policy), formField{"key", key})
		fields = append(append(fields, tc.fields...), formField{"file", ""})
		resp, body := postObjectWithHeader(t, bucketURL, tc.header, fields, "a.txt", "text/plain", []byte("x"))
		_, stored := emu.Object(testBucket, key)
		if tc.refused {
			if resp.StatusCode != 403 || !strings.Contains(body, "<Code>AccessDenied</Code>") || stored {
				t.Errorf("%s: want 403 AccessDenied and nothing stored, got %d %s (stored %v)", tc.name, resp.StatusCode, body, stored)
			}
			continue
		}
		if resp.StatusCode != 204 || !stored {
			t.Errorf("%s: want 204 and the object stored, got %d %s", tc.name, resp.StatusCode, body)
		}
	}
}
