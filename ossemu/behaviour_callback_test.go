package ossemu_test

// Upload callbacks through aliyun-oss-go-sdk and presigned URLs: the
// rendered body, the signature, and what the uploader gets when the callback
// fails or the parameter is bad.

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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

// TestCallbackToPrivateAddress: with RefusePrivateCallbacks, a callback URL
// on loopback (by address or by name) is never called, as real OSS never
// calls a loopback or private address: the object stays and the uploader
// gets 203 CallbackFailed. Without the option the same upload is called
// back.
func TestCallbackToPrivateAddress(t *testing.T) {
	cs := newCallbackServer(t, 200, `{"ok":true}`)
	port := cs.URL[strings.LastIndex(cs.URL, ":"):]
	for _, tc := range []struct {
		name, url string
		refuse    bool
	}{
		{"refused by address", "http://127.0.0.1" + port + "/cb", true},
		{"refused by name", "http://localhost" + port + "/cb", true},
		{"called without the option", "http://127.0.0.1" + port + "/cb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{RefusePrivateCallbacks: tc.refuse})
			b := ossBucket(t, emu, testAK, testSK)
			before := len(cs.requests)
			key := strings.ReplaceAll(tc.name, " ", "-") + ".txt"
			err := b.PutObject(key, strings.NewReader("x"), oss.Callback(b64JSON(map[string]string{"callbackUrl": tc.url, "callbackBody": "object=${object}"})))
			cs.mu.Lock()
			called := len(cs.requests) - before
			cs.mu.Unlock()
			if _, ok := emu.Object(testBucket, key); !ok {
				t.Fatal("the object must be stored either way")
			}
			if !tc.refuse {
				if err != nil || called != 1 {
					t.Fatalf("want the callback sent once and a 200, got %d sent and %v", called, err)
				}
				return
			}
			var se oss.ServiceError
			if !errorsAs(err, &se) || se.StatusCode != 203 || se.Code != "CallbackFailed" || !strings.Contains(se.Message, "can not connect to your callbackUrl") {
				t.Fatalf("want 203 CallbackFailed, got %v", err)
			}
			if called != 0 {
				t.Fatalf("a callback to a private address was sent %d times", called)
			}
		})
	}
}
