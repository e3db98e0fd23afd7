package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// options configure a sandbox; the command fills them from flags.
type options struct {
	Listen, OSSListen, AliOSSJS  string
	MaxSize, AllowTypes, Expires string
	SignatureVersion             string
	AccessKeyID, AccessKeySecret string
	UppyDist                     string
	PresignFormat, DefaultType   string // "": the plugin's defaults
	FormFields                   string // "": the plugin's default (full)
	// StorageDir is Caddy's storage (the binding key, the callback
	// records and queue), kept after the sandbox stops; "": a directory
	// of its own, removed when it stops. Never Caddy's default storage,
	// which a real Caddy on the machine may share.
	StorageDir string
	// NoCallbacks runs the emulator refusing callbacks to loopback and
	// private addresses, as OSS does, and the site with the confirm route
	// (confirm_path) asking OSS for no callback (callback confirm_only).
	NoCallbacks bool
	// QuotaBytes, QuotaUploads and QuotaPending are the lines of a quota
	// block for each sandbox user ("2MB per 10m", "5 per 10m", "2");
	// "": that limit is not set, and without any, no quota.
	QuotaBytes, QuotaUploads, QuotaPending string
	Debug                                  bool
}

// checkQuota refuses a --quota-* value that is not one line of
// Caddyfile arguments: the quota block checks the rest when it loads.
func (o options) checkQuota() error {
	for _, f := range []struct{ flag, v string }{
		{"--quota-bytes", o.QuotaBytes}, {"--quota-uploads", o.QuotaUploads}, {"--quota-pending", o.QuotaPending},
	} {
		if strings.ContainsAny(f.v, "{}#\"\\`\n\r") {
			return fmt.Errorf(`%s: %q is not a limit such as "5 per 10m"`, f.flag, f.v)
		}
	}
	return nil
}

// quota reports whether the options ask for a quota.
func (o options) Quota() bool {
	return o.QuotaBytes != "" || o.QuotaUploads != "" || o.QuotaPending != ""
}

// sandbox is an emulator, a demo app and the Caddyfile that puts
// oss_upload in front of them; start also runs the Caddy site.
type sandbox struct {
	emu       *ossemu.Emulator
	app       *demoApp
	aliOSS    aliOSSBundle
	uppy      uppyBundle
	tempDir   string
	storage   string // Caddy's storage directory
	restore   func() // puts XDG_DATA_HOME back once the site has stopped
	siteURL   string
	bindAddr  string // where the site listens, host:port
	caddyfile string
	loaded    bool // the Caddy config is running and must be stopped
}

// prepare checks the options, starts the emulator and the demo app and
// generates the Caddyfile, but does not run it.
func prepare(opts options) (*sandbox, error) {
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
	if err := opts.checkQuota(); err != nil {
		return nil, err
	}
	bundle, err := findAliOSSJS(opts.AliOSSJS)
	if err != nil {
		return nil, err
	}
	uppy, err := findUppy(opts.UppyDist)
	if err != nil {
		return nil, err
	}
	if opts.SignatureVersion == "" {
		opts.SignatureVersion = "v4"
	}
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = defaultAccessKeyID
	}
	if opts.AccessKeySecret == "" {
		secret := make([]byte, 16)
		_, _ = rand.Read(secret)
		opts.AccessKeySecret = hex.EncodeToString(secret)
	}

	emuOpts := ossemu.Options{
		Buckets:    []string{bucketName},
		AccessKeys: map[string]string{opts.AccessKeyID: opts.AccessKeySecret},
		Roles:      []ossemu.Role{{ARN: roleARN, MaxSessionDuration: time.Hour}},
		// OSS never calls back a laptop: with --no-callbacks neither does
		// the emulator, and uploads reach the app by the confirm route.
		RefusePrivateCallbacks: opts.NoCallbacks,
	}
	if opts.Debug {
		emuOpts.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	emu, err := ossemu.New(emuOpts)
	if err != nil {
		return nil, err
	}
	if err := emu.Listen(opts.OSSListen); err != nil {
		return nil, portError("--oss-listen", opts.OSSListen, err)
	}
	sb := &sandbox{emu: emu, aliOSS: bundle, uppy: uppy}
	fail := func(err error) (*sandbox, error) {
		sb.Close()
		return nil, err
	}
	if sb.tempDir, err = os.MkdirTemp("", "caddy-oss-sandbox-"); err != nil {
		return fail(err)
	}
	if sb.storage, err = storageDir(opts.StorageDir, sb.tempDir); err != nil {
		return fail(err)
	}
	keyFile := filepath.Join(sb.tempDir, "ossemu-callback-key.pem")
	if err := os.WriteFile(keyFile, emu.CallbackPublicKeyPEM(), 0o600); err != nil {
		return fail(err)
	}
	appConfirm := ""
	if opts.NoCallbacks {
		appConfirm = confirmPath
	}
	if sb.app, err = startDemoApp(bundle, uppy, emu, appConfirm); err != nil {
		return fail(err)
	}

	bind := host
	if bind == "localhost" {
		bind = "127.0.0.1"
	}
	sb.bindAddr = net.JoinHostPort(bind, port)
	siteHost := host
	if net.ParseIP(host) != nil {
		siteHost = "localhost" // *.localhost and localhost pages share the emulator's default CORS rule
	}
	sb.siteURL = "http://" + net.JoinHostPort(siteHost, port)
	sb.caddyfile = caddyfile(caddyfileParams{
		Bind: bind, Port: port, Opts: opts, KeyFile: keyFile, Storage: sb.storage,
		Region: emu.Region(), Endpoint: emu.Endpoint(), STSEndpoint: emu.STSEndpoint(),
		UploadURL: emu.BucketURL(bucketName), AppAddr: sb.app.Addr,
	})
	return sb, nil
}

// storageDir is the directory the sandbox's Caddy keeps its storage in:
// dir (made if missing) when the flag names one, else one inside the
// sandbox's temporary directory.
func storageDir(dir, tempDir string) (string, error) {
	if dir == "" {
		dir = filepath.Join(tempDir, "storage")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--storage-dir %q: %w", dir, err)
	}
	if abs == filepath.Clean(caddy.AppDataDir()) {
		return "", fmt.Errorf("--storage-dir %q is Caddy's own data directory, which a real Caddy on this machine uses: name another", dir)
	}
	if strings.ContainsAny(abs, "\"\n\r") {
		return "", fmt.Errorf("--storage-dir %q: a path with a quote or a line break cannot be written into the Caddyfile", dir)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("--storage-dir: %w", err)
	}
	return abs, nil
}

// start prepares a sandbox and runs its Caddy site.
func start(opts options) (*sandbox, error) {
	// A busy site port is found before anything starts, so it is reported
	// as one line naming the flag rather than as Caddy's bind error after
	// its startup logs.
	if host, port, err := loopbackAddr("--listen", opts.Listen); err == nil {
		if host == "localhost" {
			host = "127.0.0.1"
		}
		if err := checkFree("--listen", opts.Listen, net.JoinHostPort(host, port)); err != nil {
			return nil, err
		}
	}
	sb, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(sb.caddyfile), map[string]any{"filename": "oss-sandbox"})
	if err != nil {
		sb.Close()
		return nil, fmt.Errorf("sandbox config: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "oss-sandbox:", w.String())
	}
	// Caddy keeps its instance id (instance.uuid, which oss_upload's
	// callback queue names its leases with) in its data directory, outside
	// the configured storage: the sandbox's Caddy gets a data directory of
	// its own for as long as it runs.
	sb.restore = setEnv("XDG_DATA_HOME", filepath.Join(sb.tempDir, "data"))
	if err := caddy.Load(adapted, true); err != nil {
		sb.Close()
		if inUse(err) {
			return nil, portError("--listen", opts.Listen, err)
		}
		return nil, fmt.Errorf("starting the sandbox site: %w", err)
	}
	sb.loaded = true
	return sb, nil
}

// setEnv sets an environment variable and returns what puts it back.
func setEnv(name, value string) (restore func()) {
	old, had := os.LookupEnv(name)
	_ = os.Setenv(name, value)
	return func() {
		if had {
			_ = os.Setenv(name, old)
		} else {
			_ = os.Unsetenv(name)
		}
	}
}

// loopbackAddr splits a listen address that must be on loopback: the
// emulator accepts the keys it prints, so it must not be reachable from
// elsewhere.
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

// Close stops the site, the demo app and the emulator.
func (sb *sandbox) Close() {
	if sb.loaded {
		if err := caddy.Stop(); err != nil && !errors.Is(err, caddy.ErrNotConfigured) {
			fmt.Fprintln(os.Stderr, "oss-sandbox: stopping the site:", err)
		}
		sb.loaded = false
	}
	if sb.restore != nil {
		sb.restore()
		sb.restore = nil
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
