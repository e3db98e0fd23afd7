package caddyoss

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// Alibaba's sample PostObject clients send exactly these fields, in this
// order, then the file: name, policy, OSSAccessKeyId,
// success_action_status, (callback), signature, key.
func sampleForm(t *testing.T, answer map[string]any, filename string, data []byte, withCallback bool) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	str := func(k string) string { s, _ := answer[k].(string); return s }
	_ = mw.WriteField("name", filename)
	_ = mw.WriteField("policy", str("policy"))
	_ = mw.WriteField("OSSAccessKeyId", str("ossAccessKeyId"))
	_ = mw.WriteField("success_action_status", "200")
	if withCallback {
		_ = mw.WriteField("callback", str("callback"))
	}
	_ = mw.WriteField("signature", str("signature"))
	_ = mw.WriteField("key", str("dir")+filename)
	fw, _ := mw.CreateFormFile("file", filename)
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// TestFormFieldsMinimal runs the form Alibaba's sample clients send against
// ossemu through Caddy, with the documented configuration: with
// form_fields minimal the upload is stored and its callback, whose
// binding and variables ride in the callback parameter, is verified and
// reaches the app; with the default the policy's ACL pin refuses it.
func TestFormFieldsMinimal(t *testing.T) {
	emu, keyFile := startEmu(t, ossemu.Options{
		Buckets:    []string{"sample-bucket"},
		AccessKeys: map[string]string{"sample-ak": "sample-secret"},
	})
	app := newRecordingApp(t)
	site := func(formFields string) string {
		return testGlobal(t) + `
http://localhost:9080 {
	oss_upload {
		bucket sample-bucket
		region cn-hangzhou
		endpoint ` + emu.Endpoint() + `
		upload_url ` + emu.BucketURL("sample-bucket") + `
		access_key_id sample-ak
		access_key_secret sample-secret
		signature_version v1
		policy_path /get_post_signature_for_oss_upload
		client_keys
		key_prefix user-dir/
		` + formFields + `
		callback {
			url http://localhost:9080/oss/callback
			var user {http.request.header.X-User}
			trusted_key ` + keyFile + `
		}
	}
	reverse_proxy ` + strings.TrimPrefix(app.URL, "http://") + `
}`
	}
	tester := newTester(t)
	toOSS := loopbackClient(emu.Addr())
	sign := func(user string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://localhost:9080/get_post_signature_for_oss_upload", nil)
		req.Header.Set("X-User", user)
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("policy route: %d %v", resp.StatusCode, err)
		}
		return out
	}
	post := func(body *bytes.Buffer, contentType string) (int, string) {
		t.Helper()
		resp, err := toOSS.Post(emu.BucketURL("sample-bucket"), contentType, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("default pins refuse the sample form", func(t *testing.T) {
		tester.InitServer(site(""), "caddyfile")
		before := len(app.snapshot())
		body, ct := sampleForm(t, sign("eric"), "photo.png", []byte("png bytes"), true)
		status, answer := post(body, ct)
		if status != 403 || !strings.Contains(answer, `Policy Condition failed: ["eq", "$x-oss-object-acl", "default"]`) {
			t.Fatalf("want 403 on the ACL pin, got %d %s", status, answer)
		}
		if _, ok := emu.Object("sample-bucket", "user-dir/photo.png"); ok || len(app.snapshot()) != before {
			t.Fatal("a refused upload was stored or called back")
		}
	})

	tester.InitServer(site("form_fields minimal"), "caddyfile")
	t.Run("minimal: the sample form uploads and the app gets the verified callback", func(t *testing.T) {
		answer := sign("eric")
		fields, _ := answer["fields"].(map[string]any)
		for _, name := range []string{"x-oss-object-acl", "x-oss-storage-class", "x:oss_binding", "x:user", "Content-Type", "x-oss-content-type"} {
			if _, ok := fields[name]; ok {
				t.Errorf("fields carry %s, which the sample does not send", name)
			}
		}
		if fields["callback"] != answer["callback"] || answer["callback"] == "" {
			t.Errorf("fields.callback %v, callback %v", fields["callback"], answer["callback"])
		}
		param, _ := base64.StdEncoding.DecodeString(answer["callback"].(string))
		if !regexp.MustCompile(`&oss_binding=\d\.p\.`).Match(param) || !strings.Contains(string(param), "user=eric") {
			t.Errorf("callback parameter does not carry the binding and the var: %s", param)
		}
		body, ct := sampleForm(t, answer, "photo.png", []byte("png bytes"), true)
		status, got := post(body, ct)
		if status != 200 {
			t.Fatalf("upload: %d %s", status, got)
		}
		calls := app.snapshot()
		last := calls[len(calls)-1]
		if last.verified != "true" || last.form.Get("object") != "user-dir/photo.png" || last.form.Get("user") != "eric" ||
			last.form.Get("bucket") != "sample-bucket" || last.form.Get("size") != "9" {
			t.Fatalf("app received %+v", last)
		}
		var appAnswer map[string]any
		if json.Unmarshal([]byte(got), &appAnswer) != nil || appAnswer["saved"] != "user-dir/photo.png" {
			t.Errorf("uploader got %s, want the app's answer", got)
		}
		obj, ok := emu.Object("sample-bucket", "user-dir/photo.png")
		if !ok || string(obj.Data) != "png bytes" || obj.ACL != "default" || obj.StorageClass != "Standard" {
			t.Fatalf("stored %+v (ok %v)", obj, ok)
		}
	})

	t.Run("minimal: a form without the callback is refused, nothing is called", func(t *testing.T) {
		// The callback stays pinned: every upload this site signs is one
		// its app hears of. The doc pages, which send no callback, need a
		// configuration without a callback block.
		before := len(app.snapshot())
		body, ct := sampleForm(t, sign("eric"), "plain.txt", []byte("text"), false)
		if status, got := post(body, ct); status != 403 || !strings.Contains(got, `["eq", "$callback", `) {
			t.Fatalf("want 403 on the callback pin, got %d %s", status, got)
		}
		if _, ok := emu.Object("sample-bucket", "user-dir/plain.txt"); ok || len(app.snapshot()) != before {
			t.Fatal("stored, or called back")
		}
	})

	t.Run("minimal: the callback parameter stays pinned", func(t *testing.T) {
		answer := sign("eric")
		other := sign("mallory")
		answer["callback"] = other["callback"] // another upload's binding and vars
		body, ct := sampleForm(t, answer, "swap.png", []byte("x"), true)
		if status, got := post(body, ct); status != 403 || !strings.Contains(got, `"$callback"`) {
			t.Fatalf("want 403 on the callback pin, got %d %s", status, got)
		}
	})

	t.Run("minimal: what OSS then accepts from the uploader", func(t *testing.T) {
		// No condition names x-oss-object-acl or x-oss-storage-class: OSS
		// takes the uploader's fields. This is what form_fields minimal
		// gives up, and what the bucket's Block Public Access and default
		// storage class must then cover.
		answer := sign("eric")
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, kv := range [][2]string{
			{"policy", answer["policy"].(string)}, {"OSSAccessKeyId", answer["ossAccessKeyId"].(string)},
			{"success_action_status", "200"}, {"callback", answer["callback"].(string)},
			{"signature", answer["signature"].(string)}, {"key", "user-dir/public.html"},
			{"x-oss-object-acl", "public-read"}, {"x-oss-storage-class", "Archive"}, {"Content-Type", "text/html"},
		} {
			_ = mw.WriteField(kv[0], kv[1])
		}
		fw, _ := mw.CreateFormFile("file", "public.html")
		_, _ = fw.Write([]byte("<p>hi</p>"))
		_ = mw.Close()
		if status, got := post(&buf, mw.FormDataContentType()); status != 200 {
			t.Fatalf("upload: %d %s", status, got)
		}
		obj, ok := emu.Object("sample-bucket", "user-dir/public.html")
		if !ok || obj.ACL != "public-read" || obj.StorageClass != "Archive" || obj.ContentType != "text/html" {
			t.Fatalf("stored %+v (ok %v)", obj, ok)
		}
	})
}

// The values written into a callback body come back out of it unchanged,
// and none adds or changes a field, in form and JSON bodies.
func TestInlineCallbackVars(t *testing.T) {
	values := []string{"eric", "a&b=c", `a","object":"x`, "x%41y", "名字 with space", "+plus+", `back\slash`}
	for _, bodyType := range []string{bodyTypeForm, bodyTypeJSON} {
		for _, v := range values {
			c := &CallbackConfig{URL: "https://app.example.com/cb", BodyType: bodyType, Vars: map[string]string{"user": "{x}"}}
			body, tpl, err := c.effectiveBody()
			if err != nil {
				t.Fatal(err)
			}
			c.renderedBody = body
			param, err := c.callbackParam()
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{"x:user": v, "x:" + bindingVar: "v1.p.123.c2NvcGU.bWFj"}
			inlined, err := inlineCallbackVars(param, bodyType == bodyTypeJSON, vars)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(inlined)
			var doc struct {
				Body string `json:"callbackBody"`
				URL  string `json:"callbackUrl"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil || doc.URL != c.URL {
				t.Fatalf("%s %q: parameter %s: %v", bodyType, v, raw, err)
			}
			if strings.Contains(doc.Body, "${x:") {
				t.Errorf("%s %q: body still names a variable: %s", bodyType, v, doc.Body)
			}
			// OSS fills in its own variables as it would.
			sent := regexp.MustCompile(`\$\{[a-zA-Z]+\}`).ReplaceAllStringFunc(doc.Body, func(ref string) string {
				if bodyType == bodyTypeJSON {
					return `"` + ref[2:len(ref)-1] + `"`
				}
				return ref[2 : len(ref)-1]
			})
			got, err := tpl.parseBody([]byte(sent))
			if err != nil {
				t.Fatalf("%s %q: body %s: %v", bodyType, v, sent, err)
			}
			if got["x:user"] != v || got["x:"+bindingVar] != vars["x:"+bindingVar] || got["object"] != "object" {
				t.Errorf("%s %q: read back %v from %s", bodyType, v, got, sent)
			}
		}
	}
	if _, err := inlineCallbackVars(base64.StdEncoding.EncodeToString([]byte(`{"callbackBody":"a=1"}`)), false, map[string]string{"x:user": "u"}); err == nil {
		t.Error("a variable the body does not use was accepted")
	}
}
