// Package sandbox adds the `caddy oss-sandbox` command: oss_upload against
// an in-memory OSS + STS emulator, with an upload page and a demo app, all
// on loopback.
//
// It lives apart from the plugin (package caddyoss) so that a Caddy built
// with only the handler links neither the emulator nor the demo app. The
// module root (what `xcaddy build --with github.com/caddy-oss/caddy-oss`
// imports) and cmd/caddy import it for the command.
package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// The generated Caddyfile uses the oss_upload directive.
	_ "github.com/caddy-oss/caddy-oss/caddyoss"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oss-sandbox",
		Usage: "[--listen <addr>] [--oss-listen <addr>] [--ali-oss-js <file>] [--uppy-dist <dir>] [--max-size <size>] [--allow-types <list>] [--expires <duration>] [--presign-format json|url] [--default-type <mime>] [--form-fields full|minimal] [--signature-version v4|v1] [--access-key-id <id>] [--access-key-secret <secret>] [--storage-dir <dir>] [--no-callbacks] [--quota-bytes <n per window>] [--quota-uploads <n per window>] [--quota-pending <n>] [--debug] [--print-config]",
		Short: "Runs a local OSS emulator, an upload page and a demo app behind oss_upload",
		Long: `
Starts, on loopback only:

  - ossemu, an in-memory OSS + STS emulator (bucket "sandbox");
  - a Caddy site with oss_upload configured against it: the STS,
    post-policy and presign routes, and callback verification;
  - an upload page that uploads by PostObject, presigned PUT, or STS
    credentials with ali-oss (multipart for large files), or with stock
    Uppy (Dashboard and @uppy/aws-s3 against oss_upload's Companion S3
    routes at /oss/uppy), and lists the objects the emulator holds;
  - a demo app behind reverse_proxy that records the verified callbacks
    (GET /demo/callbacks) and serves the stored objects (GET /demo/objects).

Open the printed URL and upload a file; nothing leaves this machine.

Caddy's storage (the callback binding key, the records and queue of
callbacks) is a temporary directory removed when the sandbox stops, or
--storage-dir when given (kept); never Caddy's own data directory, which
a real Caddy on the machine may use.

--no-callbacks shows the confirm route, for sites OSS cannot call back:
the emulator calls back no loopback or private address (OSS never calls
back a laptop), the site asks OSS for no callback (callback confirm_only)
and answers confirm_path /oss/confirm, where the page confirms each
upload once the emulator has stored it; Caddy checks the upload with the
emulator and hands it to the demo app as a verified callback. GET
/demo/oss-callbacks lists the callbacks the emulator made or refused.

--print-config prints the Caddyfile the sandbox runs and exits.
--debug adds oss_upload's debug lines (one per signing decision and
verified callback), the site's access log and the emulator's requests.

The page loads ali-oss's browser bundle from --ali-oss-js when given, else
from node_modules/ali-oss/dist/aliyun-oss-sdk.min.js under the current
directory (or e2e/; run "cd e2e && npm ci" once in a checkout), else from
Alibaba's public CDN. The page says which. Likewise Uppy's prebuilt bundle
(uppy.min.mjs and uppy.min.css) comes from --uppy-dist when given, else
from node_modules/uppy/dist (or e2e/node_modules/uppy/dist), else from
Transloadit's public CDN.

Uploads go below uploads/<user>/, where <user> is the sandbox_user cookie
(letters, digits, '-' and '_', at most 32) or "guest": the page sets it.`,
		CobraFunc: func(cmd *cobra.Command) {
			addFlags(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSandbox)
		},
	})
}

func addFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringP("listen", "l", "127.0.0.1:8080", "address of the site (upload page and signing routes)")
	fs.String("oss-listen", "127.0.0.1:0", "address of the OSS + STS emulator (port 0: any free port)")
	fs.String("ali-oss-js", "", "path to ali-oss's browser bundle (aliyun-oss-sdk.min.js)")
	fs.String("uppy-dist", "", "path to Uppy's prebuilt bundle folder (node_modules/uppy/dist: uppy.min.mjs, uppy.min.css)")
	fs.String("max-size", "100MB", "oss_upload max_size")
	fs.String("allow-types", defaultTypes, "oss_upload allow_types, space separated")
	fs.String("expires", "15m", "oss_upload expires: lifetime of policies and presigned URLs")
	fs.String("presign-format", "", "oss_upload presign_format: json or url (the bare URL, as Alibaba's sample server answers); default json")
	fs.String("default-type", "", "oss_upload default_type: the type presigned PUTs are signed for when the client names none; default the filename extension's")
	fs.String("form-fields", "", "oss_upload form_fields: full, or minimal (PostObject policies ask only for the fields Alibaba's sample clients send; allow_types is then left out unless --allow-types is given); default full")
	fs.String("signature-version", "v4", "oss_upload signature_version")
	fs.String("access-key-id", defaultAccessKeyID, "the emulator account's AccessKeyId, which Caddy signs with")
	fs.String("access-key-secret", "", "its AccessKeySecret (default: random); set it to read the bucket from tests")
	fs.String("storage-dir", "", "directory of Caddy's storage for the sandbox, kept after it stops (default: a temporary one, removed)")
	fs.Bool("no-callbacks", false, "no OSS callbacks: the emulator refuses loopback callbacks as OSS does, the site asks for none (callback confirm_only) and the page confirms each upload at "+confirmPath)
	fs.String("quota-bytes", "", `per-user quota: bytes per window, such as "20MB per 10m" (at least --max-size); a signing over it gets 429`)
	fs.String("quota-uploads", "", `per-user quota: uploads per window, such as "5 per 10m"`)
	fs.String("quota-pending", "", "per-user quota: uploads signed and not yet verified at once, such as 2")
	fs.BoolP("debug", "v", false, "log oss_upload's debug lines, every request of the site and of the emulator")
	fs.Bool("print-config", false, "print the Caddyfile the sandbox runs, then exit")
}

func cmdSandbox(fl caddycmd.Flags) (int, error) {
	return run(fl, os.Stdout)
}

// run is the command, writing what it prints to out.
func run(fl caddycmd.Flags, out io.Writer) (int, error) {
	opts := options{
		Listen: fl.String("listen"), OSSListen: fl.String("oss-listen"), AliOSSJS: fl.String("ali-oss-js"),
		MaxSize: fl.String("max-size"), AllowTypes: fl.String("allow-types"), Expires: fl.String("expires"),
		SignatureVersion: fl.String("signature-version"), Debug: fl.Bool("debug"),
		AccessKeyID: fl.String("access-key-id"), AccessKeySecret: fl.String("access-key-secret"),
		UppyDist:      fl.String("uppy-dist"),
		PresignFormat: fl.String("presign-format"), DefaultType: fl.String("default-type"),
		FormFields: fl.String("form-fields"), StorageDir: fl.String("storage-dir"),
		NoCallbacks: fl.Bool("no-callbacks"),
		QuotaBytes:  fl.String("quota-bytes"), QuotaUploads: fl.String("quota-uploads"), QuotaPending: fl.String("quota-pending"),
	}
	// A minimal form sends no type fields, which allow_types would need:
	// the default list goes unless asked for.
	if opts.FormFields == "minimal" && !fl.Changed("allow-types") {
		opts.AllowTypes = ""
	}
	if fl.Bool("print-config") {
		// The Caddyfile names the emulator's and the demo app's addresses,
		// so they are started (and stopped again) to print it.
		sb, err := prepare(opts)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		defer sb.Close()
		_, err = io.WriteString(out, sb.caddyfile)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		return caddy.ExitCodeSuccess, nil
	}

	sb, err := start(opts)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Fprintf(out, `caddy oss-sandbox is running (loopback only)

  upload page:   %s/
  OSS emulator:  %s  (bucket %q, also %s)
  demo app:      %s  (behind reverse_proxy; verified callbacks at %s/demo/callbacks, objects at %s/demo/objects)
  ali-oss:       %s
  Uppy:          %s
%s
Press Ctrl+C to stop.
`, sb.siteURL, sb.emu.Endpoint(), bucketName, sb.emu.BucketURL(bucketName), sb.app.URL, sb.siteURL, sb.siteURL, sb.aliOSS.describe(),
		sb.uppy.describe(), callbacksLine(opts))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	sb.Close()
	return caddy.ExitCodeSuccess, nil
}

// callbacksLine is the banner's line about how uploads reach the app:
// nothing by default (OSS's callbacks, as the page says), a line naming
// the confirm route with --no-callbacks.
func callbacksLine(opts options) string {
	if !opts.NoCallbacks {
		return ""
	}
	return "  callbacks:     none (--no-callbacks): the emulator calls back no loopback address, as OSS does;\n" +
		"                 the page confirms each upload at " + confirmPath + " and Caddy hands it to the demo app\n"
}
