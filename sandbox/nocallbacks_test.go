package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// --no-callbacks turns the confirm route on and asks OSS for no callback
// (confirm_path, callback confirm_only); without it the Caddyfile has
// neither, and the callback block is the same either way.
func TestSandboxCaddyfileNoCallbacks(t *testing.T) {
	for _, on := range []bool{false, true} {
		opts := options{MaxSize: "1MB", AllowTypes: "image/* text/plain", Expires: "15m",
			SignatureVersion: "v4", AccessKeyID: "ak", AccessKeySecret: "sk", NoCallbacks: on}
		cfg := caddyfile(caddyfileParams{
			Bind: "127.0.0.1", Port: "8080", KeyFile: "/tmp/key.pem", Storage: "/tmp/sandbox-storage", AppAddr: "127.0.0.1:1", Region: "cn-hangzhou",
			Endpoint: "http://127.0.0.1:1", STSEndpoint: "http://127.0.0.1:1", UploadURL: "http://sandbox.127.0.0.1:1", Opts: opts,
		})
		out, _ := adapt(t, cfg)
		for _, want := range []string{`"url":"http://127.0.0.1:8080/oss/callback"`, `"trusted_keys":["/tmp/key.pem"]`,
			`"vars":{"client":"{http.request.remote.host}"}`} {
			if !strings.Contains(out, want) {
				t.Errorf("no-callbacks %v: adapted config lacks %s:\n%s", on, want, out)
			}
		}
		for _, s := range []string{"\t\tconfirm_path /oss/confirm\n", "\t\t\tconfirm_only\n", `"confirm_path":"/oss/confirm"`, `"confirm_only":true`} {
			text := cfg
			if strings.HasPrefix(s, `"`) {
				text = out
			}
			if got := strings.Contains(text, s); got != on {
				t.Errorf("no-callbacks %v: has %q: %v\n%s", on, s, got, text)
			}
		}
		if !on && strings.Contains(cfg, "confirm") {
			t.Errorf("without --no-callbacks the Caddyfile mentions confirm:\n%s", cfg)
		}
	}
}

// --print-config --no-callbacks prints the Caddyfile with the confirm
// route, which adapts; the flag is in the command's help.
func TestSandboxNoCallbacksFlag(t *testing.T) {
	code, out, err := runCommand(t, "--print-config", "--no-callbacks", "--listen", freeAddr(t))
	if code != 0 || err != nil {
		t.Fatalf("exit %d: %v", code, err)
	}
	adapted, _ := adapt(t, out)
	if !strings.Contains(adapted, `"confirm_path":"/oss/confirm"`) || !strings.Contains(adapted, `"confirm_only":true`) {
		t.Errorf("--no-callbacks: adapted config lacks the confirm route:\n%s", adapted)
	}
	code, out, err = runCommand(t, "--print-config", "--listen", freeAddr(t))
	if code != 0 || err != nil || strings.Contains(out, "confirm") {
		t.Errorf("without --no-callbacks: exit %d, %v:\n%s", code, err, out)
	}
	cmd := &cobra.Command{}
	addFlags(cmd)
	if f := cmd.Flags().Lookup("no-callbacks"); f == nil || f.Value.Type() != "bool" || f.DefValue != "false" || !strings.Contains(f.Usage, confirmPath) {
		t.Errorf("--no-callbacks flag: %+v", f)
	}
	if c := caddycmd.Commands()["oss-sandbox"]; !strings.Contains(c.Usage, "[--no-callbacks]") || !strings.Contains(c.Long, "--no-callbacks") {
		t.Errorf("oss-sandbox's help does not name --no-callbacks:\n%s\n%s", c.Usage, c.Long)
	}
}

// The page says how uploads reach the app: with a confirm path it names
// the confirm route and --no-callbacks; without one, OSS's callback.
func TestSandboxPageNoCallbacks(t *testing.T) {
	emu, err := ossemu.New(ossemu.Options{Buckets: []string{bucketName}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", confirmPath} {
		app, err := startDemoApp(aliOSSBundle{Source: fromCDN}, uppyBundle{Source: fromCDN, Version: uppyVersion}, emu, path)
		if err != nil {
			t.Fatal(err)
		}
		code, _, page := get(t, app.URL+"/")
		app.Close()
		confirming := strings.Contains(page, `id="lead" data-confirm="/oss/confirm"`) && strings.Contains(page, "--no-callbacks") &&
			strings.Contains(page, "the page's confirm for it")
		calledBack := strings.Contains(page, "the emulator stores the bytes and calls back") && strings.Contains(page, "answers OSS for it")
		if code != 200 || confirming != (path != "") || calledBack != (path == "") || strings.Contains(page, "data-confirm") != (path != "") {
			t.Errorf("page with confirm path %q: %d, names the confirm route %v, OSS's callback %v\n%s", path, code, confirming, calledBack, page)
		}
	}
}

// With --no-callbacks an upload reaches the demo app once, verified,
// when it is confirmed: OSS was asked for no callback, a second confirm
// is answered "duplicate", and the emulator called nothing back.
func TestSandboxNoCallbacksConfirm(t *testing.T) {
	homeDirs(t)
	opts := sandboxOptions(t)
	opts.NoCallbacks = true
	sb, err := start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	code, _, body := do(t, http.MethodGet, sb.siteURL+"/oss/presign?filename=note.txt&type=text/plain&size=5",
		http.Header{"Accept": {"application/json"}}, nil)
	var p struct {
		URL, Method, Key string
		Headers          map[string]string
		Confirm          struct{ URL, Token string }
	}
	if err := json.Unmarshal(body, &p); code != 200 || err != nil || p.Confirm.URL != confirmPath || p.Confirm.Token == "" {
		t.Fatalf("presign: %d %s", code, body)
	}
	if u, err := url.Parse(p.URL); err != nil || u.Query().Has("callback") {
		t.Errorf("the presigned URL asks OSS for a callback: %s", p.URL)
	}
	h := http.Header{}
	for k, v := range p.Headers {
		h.Set(k, v)
	}
	if code, _, answer := do(t, p.Method, p.URL, h, strings.NewReader("hello")); code != 200 || len(answer) != 0 {
		t.Fatalf("PUT: %d %s, want 200 without a callback's answer", code, answer)
	}
	if list := recordedBy(t, sb); len(list) != 0 {
		t.Fatalf("the app heard of an upload nobody confirmed: %+v", list)
	}

	confirm, _ := json.Marshal(map[string]string{"key": p.Key, "token": p.Confirm.Token})
	var answer struct {
		OK       bool
		Status   string
		Callback demoCallback
	}
	code, _, body = do(t, http.MethodPost, sb.siteURL+p.Confirm.URL, nil, bytes.NewReader(confirm))
	if err := json.Unmarshal(body, &answer); code != 200 || err != nil || !answer.OK || answer.Callback.Verified != "true" ||
		answer.Callback.Fields["object"] != p.Key || answer.Callback.Fields["size"] != "5" {
		t.Fatalf("confirm: %d %s", code, body)
	}
	code, _, body = do(t, http.MethodPost, sb.siteURL+p.Confirm.URL, nil, bytes.NewReader(confirm))
	if err := json.Unmarshal(body, &answer); code != 200 || err != nil || answer.Status != "duplicate" {
		t.Fatalf("second confirm: %d %s", code, body)
	}
	if list := recordedBy(t, sb); len(list) != 1 || list[0].Fields["object"] != p.Key || list[0].Verified != "true" {
		t.Fatalf("the app recorded %+v, want the upload once", list)
	}
	if list := ossCallbacksOf(t, sb); len(list) != 0 {
		t.Errorf("the emulator called back: %+v", list)
	}
}

// The emulator calls back no loopback address with --no-callbacks, as OSS
// does: an upload that asks for a callback to the site is stored, the
// uploader gets 203 CallbackFailed, and /demo/oss-callbacks lists the
// refusal. Without the flag the same callback reaches the site (which
// refuses it: no binding).
func TestSandboxNoCallbacksEmulator(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(map[bool]string{false: "callbacks", true: "no-callbacks"}[on], func(t *testing.T) {
			emulatorCallsBack(t, on)
		})
	}
}

// emulatorCallsBack uploads with a callback to the site through a sandbox
// with or without --no-callbacks and checks what the emulator did.
func emulatorCallsBack(t *testing.T, on bool) {
	homeDirs(t)
	opts := sandboxOptions(t)
	opts.NoCallbacks = on
	sb, err := start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	client, err := oss.New(sb.emu.Endpoint(), opts.AccessKeyID, opts.AccessKeySecret, oss.ForcePathStyle(true), oss.Region(sb.emu.Region()))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := client.Bucket(bucketName)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := json.Marshal(map[string]string{"callbackUrl": "http://" + sb.bindAddr + "/oss/callback", "callbackBody": "object=${object}"})
	err = bucket.PutObject("uploads/guest/called.txt", strings.NewReader("x"), oss.Callback(base64.StdEncoding.EncodeToString(cb)))
	var se oss.ServiceError
	if !errors.As(err, &se) || se.StatusCode != 203 || se.Code != "CallbackFailed" {
		t.Errorf("no-callbacks %v: %v, want 203 CallbackFailed", on, err)
	}
	list := ossCallbacksOf(t, sb)
	if len(list) != 1 || !strings.HasSuffix(list[0].URL, "/oss/callback") || (list[0].Status == 0) != on || list[0].Error == "" {
		t.Errorf("no-callbacks %v: the emulator's callbacks %+v", on, list)
	}
	if got := recordedBy(t, sb); len(got) != 0 {
		t.Errorf("no-callbacks %v: the app recorded %+v", on, got)
	}
}

func recordedBy(t *testing.T, sb *sandbox) []demoCallback {
	t.Helper()
	var list []demoCallback
	if _, _, body := get(t, sb.siteURL+"/demo/callbacks"); json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("/demo/callbacks: %s", body)
	}
	return list
}

func ossCallbacksOf(t *testing.T, sb *sandbox) []ossCallback {
	t.Helper()
	var list []ossCallback
	if code, _, body := get(t, sb.siteURL+ossCallbacksPath); code != 200 || json.Unmarshal([]byte(body), &list) != nil || list == nil {
		t.Fatalf("%s: %d %s", ossCallbacksPath, code, body)
	}
	return list
}
