package caddyoss

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oss-sandbox",
		Usage: "[--listen <addr>] [--oss-listen <addr>] [--ali-oss-js <file>] [--max-size <size>] [--allow-types <list>] [--expires <duration>] [--signature-version v4|v1] [--access-key-id <id>] [--access-key-secret <secret>]",
		Short: "Runs a local OSS emulator, an upload page and a demo app behind oss_upload",
		Long: `
Starts, on loopback only:

  - ossemu, an in-memory OSS + STS emulator (bucket "sandbox");
  - a Caddy site with oss_upload configured against it: the STS,
    post-policy and presign routes, and callback verification;
  - an upload page that uploads by PostObject, presigned PUT, or STS
    credentials with ali-oss (multipart for large files);
  - a demo app behind reverse_proxy that records the verified callbacks.

Open the printed URL and upload a file; nothing leaves this machine.

The page loads ali-oss's browser bundle from --ali-oss-js when given, else
from node_modules/ali-oss/dist/aliyun-oss-sdk.min.js under the current
directory (or e2e/), else from Alibaba's public CDN.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("listen", "l", "127.0.0.1:8080", "address of the site (upload page and signing routes)")
			cmd.Flags().String("oss-listen", "127.0.0.1:0", "address of the OSS + STS emulator")
			cmd.Flags().String("ali-oss-js", "", "path to ali-oss's browser bundle (aliyun-oss-sdk.min.js)")
			cmd.Flags().String("max-size", "100MB", "oss_upload max_size")
			cmd.Flags().String("allow-types", defaultSandboxTypes, "oss_upload allow_types, space separated")
			cmd.Flags().String("expires", "15m", "oss_upload expires: lifetime of policies and presigned URLs")
			cmd.Flags().String("signature-version", "v4", "oss_upload signature_version")
			cmd.Flags().String("access-key-id", "sandbox-ak", "the emulator account's AccessKeyId, which Caddy signs with")
			cmd.Flags().String("access-key-secret", "", "its AccessKeySecret (default: random); set it to read the bucket from tests")
			cmd.Flags().BoolP("debug", "v", false, "log every request of the site and the emulator")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSandbox)
		},
	})
}

const (
	defaultSandboxTypes = "image/* video/* audio/* text/plain application/pdf application/zip application/json"
	sandboxBucket       = "sandbox"
	sandboxRole         = "acs:ram::1000000000000000:role/sandbox-uploader"
	aliOSSCDN           = "https://gosspublic.alicdn.com/aliyun-oss-sdk-6.18.0.min.js"
)

// sandboxOptions configure a sandbox; the command fills them from flags.
type sandboxOptions struct {
	Listen, OSSListen, AliOSSJS  string
	MaxSize, AllowTypes, Expires string
	SignatureVersion             string
	AccessKeyID, AccessKeySecret string
	Debug                        bool
}

// sandbox is a running emulator, demo app and Caddy configuration.
type sandbox struct {
	emu     *ossemu.Emulator
	app     *demoApp
	tempDir string
	siteURL string
}

func cmdSandbox(fl caddycmd.Flags) (int, error) {
	opts := sandboxOptions{
		Listen: fl.String("listen"), OSSListen: fl.String("oss-listen"), AliOSSJS: fl.String("ali-oss-js"),
		MaxSize: fl.String("max-size"), AllowTypes: fl.String("allow-types"), Expires: fl.String("expires"),
		SignatureVersion: fl.String("signature-version"), Debug: fl.Bool("debug"),
		AccessKeyID: fl.String("access-key-id"), AccessKeySecret: fl.String("access-key-secret"),
	}
	sb, err := startSandbox(opts)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Printf(`caddy oss-sandbox is running (loopback only)

  upload page:   %s/
  OSS emulator:  %s  (bucket %q, also %s)
  demo app:      %s  (behind reverse_proxy; verified callbacks at %s/demo/callbacks)

Press Ctrl+C to stop.
`, sb.siteURL, sb.emu.Endpoint(), sandboxBucket, sb.emu.BucketURL(sandboxBucket), sb.app.URL, sb.siteURL)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	sb.Close()
	return caddy.ExitCodeSuccess, nil
}

// startSandbox starts the emulator and the demo app, then loads a Caddy
// config with oss_upload pointed at them.
func startSandbox(opts sandboxOptions) (*sandbox, error) {
	host, port, err := loopbackAddr("--listen", opts.Listen)
	if err != nil {
		return nil, err
	}
	if opts.OSSListen == "" {
		opts.OSSListen = "127.0.0.1:0"
	}
	if _, _, err := loopbackAddr("--oss-listen", opts.OSSListen); err != nil {
		return nil, err
	}
	jsPath, err := findAliOSSJS(opts.AliOSSJS)
	if err != nil {
		return nil, err
	}

	if opts.AccessKeyID == "" {
		opts.AccessKeyID = "sandbox-ak"
	}
	if opts.AccessKeySecret == "" {
		secret := make([]byte, 16)
		_, _ = rand.Read(secret)
		opts.AccessKeySecret = hex.EncodeToString(secret)
	}
	emuOpts := ossemu.Options{
		Buckets:    []string{sandboxBucket},
		AccessKeys: map[string]string{opts.AccessKeyID: opts.AccessKeySecret},
		Roles:      []ossemu.Role{{ARN: sandboxRole, MaxSessionDuration: time.Hour}},
	}
	if opts.Debug {
		emuOpts.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	emu, err := ossemu.New(emuOpts)
	if err != nil {
		return nil, err
	}
	if err := emu.Listen(opts.OSSListen); err != nil {
		return nil, err
	}
	sb := &sandbox{emu: emu}
	fail := func(err error) (*sandbox, error) {
		sb.Close()
		return nil, err
	}
	if sb.tempDir, err = os.MkdirTemp("", "caddy-oss-sandbox-"); err != nil {
		return fail(err)
	}
	keyFile := filepath.Join(sb.tempDir, "ossemu-callback-key.pem")
	if err := os.WriteFile(keyFile, emu.CallbackPublicKeyPEM(), 0o600); err != nil {
		return fail(err)
	}
	if sb.app, err = startDemoApp(jsPath); err != nil {
		return fail(err)
	}
	siteHost := host
	if ip := net.ParseIP(host); ip != nil {
		siteHost = "localhost" // *.localhost and localhost pages share the default CORS rule
	}
	sb.siteURL = "http://" + net.JoinHostPort(siteHost, port)

	cfg := sandboxCaddyfile(opts, host, port, sb, keyFile)
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "oss-sandbox"})
	if err != nil {
		return fail(fmt.Errorf("sandbox config: %w", err))
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "oss-sandbox:", w.String())
	}
	if err := caddy.Load(adapted, true); err != nil {
		return fail(fmt.Errorf("starting the sandbox site: %w", err))
	}
	return sb, nil
}

// loopbackAddr splits a listen address that must be on loopback.
func loopbackAddr(flag, addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", "", fmt.Errorf("%s %q: the sandbox listens on loopback only", flag, addr)
	}
	return host, port, nil
}

func sandboxCaddyfile(opts sandboxOptions, host, port string, sb *sandbox, keyFile string) string {
	bind := host
	if bind == "localhost" {
		bind = "127.0.0.1"
	}
	logging := ""
	if opts.Debug {
		logging = "\tlog\n"
	}
	return `{
	admin off
	auto_https off
	persist_config off
	http_port ` + port + `
}

http://:` + port + ` {
	bind ` + bind + `
` + logging + `	oss_upload {
		bucket ` + sandboxBucket + `
		region ` + sb.emu.Region() + `
		endpoint ` + sb.emu.Endpoint() + `
		upload_url ` + sb.emu.BucketURL(sandboxBucket) + `
		access_key_id ` + opts.AccessKeyID + `
		access_key_secret ` + opts.AccessKeySecret + `
		signature_version ` + opts.SignatureVersion + `
		key_prefix uploads/
		max_size ` + opts.MaxSize + `
		allow_types ` + strings.Join(strings.Fields(opts.AllowTypes), " ") + `
		expires ` + opts.Expires + `
		sts {
			role_arn ` + sandboxRole + `
			session_name sandbox-{http.request.remote.host}
			endpoint ` + sb.emu.STSEndpoint() + `
			duration 15m
		}
		callback {
			url http://127.0.0.1:` + port + `/oss/callback
			var client {http.request.remote.host}
			trusted_key ` + keyFile + `
		}
	}
	reverse_proxy ` + strings.TrimPrefix(sb.app.URL, "http://") + `
}
`
}

// findAliOSSJS returns the ali-oss browser bundle to serve, or "" for the
// public CDN.
func findAliOSSJS(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", fmt.Errorf("--ali-oss-js: %w", err)
		}
		return flag, nil
	}
	for _, p := range []string{
		"node_modules/ali-oss/dist/aliyun-oss-sdk.min.js",
		"e2e/node_modules/ali-oss/dist/aliyun-oss-sdk.min.js",
	} {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", nil
}

// Close stops the site, the demo app and the emulator.
func (sb *sandbox) Close() {
	if err := caddy.Stop(); err != nil && !errors.Is(err, caddy.ErrNotConfigured) {
		fmt.Fprintln(os.Stderr, "oss-sandbox: stopping the site:", err)
	}
	if sb.app != nil {
		sb.app.Close()
	}
	if sb.emu != nil {
		_ = sb.emu.Close()
	}
	if sb.tempDir != "" {
		_ = os.RemoveAll(sb.tempDir)
	}
}
