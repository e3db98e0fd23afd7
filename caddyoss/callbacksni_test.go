package caddyoss

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// OSS sends no TLS server name to an https callback URL unless the
// callback parameter says callbackSNI: true, and Caddy picks its
// certificate by server name. The signing routes ask for SNI on https
// callback URLs, so the upload's callback reaches the app over https; the
// same callback without it fails the handshake and the uploader gets 203,
// as on OSS.
func TestCallbackOverHTTPS(t *testing.T) {
	app := newSecApp(t)
	emu, tester := startTLSSite(t, strings.TrimPrefix(app.URL, "http://"), "")

	resp := getWhenReady(t, tester.Client, "https://localhost:9443/oss/presign?filename=a.txt&type=text/plain")
	var p struct{ URL string }
	err := json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("presign: %d %v", resp.StatusCode, err)
	}
	u, _ := url.Parse(p.URL)
	raw, _ := base64.StdEncoding.DecodeString(u.Query().Get("callback"))
	var param map[string]any
	if err := json.Unmarshal(raw, &param); err != nil || param["callbackSNI"] != true {
		t.Fatalf("callback parameter %s", raw)
	}

	toOSS := loopbackClient(emu.Addr())
	put := func(target string) (int, string) {
		req, _ := http.NewRequest("PUT", target, strings.NewReader("over tls"))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := toOSS.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := put(p.URL); status != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("upload with callbackSNI: %d %s", status, body)
	}
	if got := app.verified(); len(got) != 1 {
		t.Fatalf("the app received %d callbacks", len(got))
	}

	// The same callback without callbackSNI, through an SDK upload: the
	// handshake fails, OSS reports CallbackFailed, the app hears nothing.
	delete(param, "callbackSNI")
	js, _ := json.Marshal(param)
	client, _ := oss.New(emu.Endpoint(), "tls-ak", "tls-secret", oss.HTTPClient(toOSS))
	b, _ := client.Bucket("tls-bucket")
	err = b.PutObject("no-sni.txt", strings.NewReader("x"), oss.Callback(base64.StdEncoding.EncodeToString(js)),
		oss.CallbackVar(u.Query().Get("callback-var")))
	var se oss.ServiceError
	if !errors.As(err, &se) || se.StatusCode != 203 {
		t.Fatalf("upload without callbackSNI: %v, want 203", err)
	}
	cbs := emu.Callbacks()
	if last := cbs[len(cbs)-1]; last.Status != 0 || last.Err == "" {
		t.Errorf("the callback without SNI reached a server: %+v", last)
	}
	if got := app.verified(); len(got) != 1 {
		t.Fatalf("the app received %d callbacks", len(got))
	}
}

// A queued callback of an https site is retried through that site's
// server as well (the retry carries no TLS state of its own).
func TestDeliveryOverHTTPS(t *testing.T) {
	app := newFlakyApp(t)
	app.setMode("down")
	emu, tester := startTLSSite(t, app.addr, "answer_within 500ms")
	resp := getWhenReady(t, tester.Client, "https://localhost:9443/oss/presign?filename=a.txt&type=text/plain")
	var p struct{ URL string }
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	req, _ := http.NewRequest("PUT", p.URL, strings.NewReader("queued over tls"))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := loopbackClient(emu.Addr()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"queued"`) {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	app.setMode("up")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got := app.requests(); len(got) > 0 {
			if got[0].header.Get(verifiedHeader) != "true" || got[0].header.Get("Idempotency-Key") == "" {
				t.Fatalf("the app received %v", got[0].header)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the queued callback was not delivered")
		}
	}
}

// startTLSSite runs ossemu and Caddy serving oss_upload over https on
// localhost:9443 with an https callback URL, in front of upstream;
// callbackExtra goes into the callback block.
func startTLSSite(t *testing.T, upstream, callbackExtra string) (*ossemu.Emulator, *caddytest.Tester) {
	t.Helper()
	emu, keyFile := startEmu(t, ossemu.Options{Buckets: []string{"tls-bucket"}, AccessKeys: map[string]string{"tls-ak": "tls-secret"}})
	tester := newTester(t)
	tester.InitServer(testGlobal(t)+`
localhost:9443 {
	tls internal
	oss_upload {
		bucket tls-bucket
		region cn-hangzhou
		endpoint `+emu.Endpoint()+`
		upload_url `+emu.BucketURL("tls-bucket")+`
		access_key_id tls-ak
		access_key_secret tls-secret
		callback {
			url https://localhost:9443/oss/callback
			trusted_key `+keyFile+`
			`+callbackExtra+`
		}
	}
	reverse_proxy `+upstream+`
}`, "caddyfile")
	return emu, tester
}
