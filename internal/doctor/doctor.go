package doctor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// Target is one oss_upload handler as the doctor checks it: the handler's
// configuration with its defaults applied, {env.*} expanded and request
// placeholders replaced by a doctor value.
type Target struct {
	// Label names the handler in the output.
	Label string
	// Origins are the site origins the CORS checks use; Options.Origin
	// replaces them.
	Origins []string

	Bucket, Region string
	// Endpoint is where server-side calls go; UploadURL where browsers
	// send the bytes (the CORS preflights go there).
	Endpoint, UploadURL string
	// SignatureV1 signs server-side calls with V1 instead of V4.
	SignatureV1 bool

	// Credentials are the server's credentials; CredentialsFrom says
	// where they come from. CredentialsErr, when set, is why there are
	// none, and every check that needs them is skipped.
	Credentials     oss.CredentialsProvider
	CredentialsFrom string
	CredentialsErr  error

	// Prefix is the expanded key prefix; the doctor's objects go below
	// Prefix + ".oss-doctor/".
	Prefix string
	// ContentType is the type the probe object is stored with.
	ContentType string

	// The routes that are on.
	PostObject, Presign, Uppy bool
	// ClientACL, when set, says how uploaders can choose an object's ACL
	// (the STS route, form_fields minimal): Block Public Access must then
	// be on.
	ClientACL string
	// BoundCallbacks: callbacks are confirmed with OSS (HeadObject) and
	// objects outside the limits deleted (DeleteObject).
	BoundCallbacks bool
	// Callback is the callback the signing routes ask OSS for; nil when
	// none.
	Callback *Callback
	// STS is the STS route; nil when off.
	STS *STS
}

// Callback is the callback OSS is asked to send.
type Callback struct {
	URL string
	// SNI: https callback parameters ask OSS for a TLS server name.
	SNI bool
	// SNIOption is how the config turns SNI off, for the fix.
	SNIOption string
}

// STS is the STS route: the role, and the call that assumes it as the
// handler does.
type STS struct {
	RoleARN     string
	SessionName string
	// Policy is the session policy the route sends for Prefix.
	Policy string
	// Duration is the configured session duration.
	Duration time.Duration
	// AssumeRole calls STS with the handler's client.
	AssumeRole func(ctx context.Context, session, policy string) (Credentials, error)
}

// Credentials are temporary credentials from AssumeRole.
type Credentials struct{ ID, Secret, Token string }

func (c Credentials) GetAccessKeyID() string     { return c.ID }
func (c Credentials) GetAccessKeySecret() string { return c.Secret }
func (c Credentials) GetSecurityToken() string   { return c.Token }

// Options tune a run.
type Options struct {
	// Origin, when set, is the site origin of every handler's CORS checks.
	Origin string
	// LookupIP resolves the callback host. Default: net.DefaultResolver.
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
	// HTTPClient sends the CORS preflights. Default: a client with a 15 s
	// timeout.
	HTTPClient *http.Client
	// Timeout bounds each handler's checks. Default: 2 minutes.
	Timeout time.Duration

	// probeID names the doctor's objects; default random (tests fix it).
	probeID string
}

// Result counts what a run found.
type Result struct{ Passed, Failed, Skipped int }

// Run checks every target and writes the report to w: a heading per
// handler, then one line per check, "✓ <check>", "✗ <check>: <what is
// wrong>. Fix: <the fix>" or "- <check>: skipped (<why>)", and a summary.
func Run(ctx context.Context, w io.Writer, targets []Target, opts Options) Result {
	if opts.LookupIP == nil {
		opts.LookupIP = func(ctx context.Context, host string) ([]net.IP, error) {
			return net.DefaultResolver.LookupIP(ctx, "ip", host)
		}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	var total Result
	if len(targets) == 0 {
		fmt.Fprintln(w, "no oss_upload handler in the config")
		return total
	}
	for i := range targets {
		if i > 0 {
			fmt.Fprintln(w)
		}
		t := &targets[i]
		fmt.Fprintf(w, "oss_upload (%s): bucket %s, region %s\n", t.Label, t.Bucket, t.Region)
		cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		r := &run{ctx: cctx, w: w, t: t, opts: opts}
		r.all()
		cancel()
		total.Passed += r.res.Passed
		total.Failed += r.res.Failed
		total.Skipped += r.res.Skipped
	}
	fmt.Fprintf(w, "\n%s, %s: %d passed, %d failed, %d skipped\n",
		plural(len(targets), "handler"), verdict(total), total.Passed, total.Failed, total.Skipped)
	return total
}

func verdict(r Result) string {
	if r.Failed > 0 {
		return "problems found"
	}
	return "no problems found"
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

// run is the checks of one target.
type run struct {
	ctx  context.Context
	w    io.Writer
	t    *Target
	opts Options
	res  Result

	server   *oss.Bucket // signed as the handler signs
	v1       *oss.Client // region-free: GetBucketLocation
	v4       *oss.Bucket // Block Public Access (a sub-resource V1 clients do not sign)
	probeDir string      // Prefix + ".oss-doctor/<random>/"
}

func (r *run) pass(check string) {
	r.res.Passed++
	fmt.Fprintf(r.w, "✓ %s\n", check)
}

func (r *run) fail(check, what, fix string) {
	r.res.Failed++
	fmt.Fprintf(r.w, "✗ %s: %s. Fix: %s\n", check, strings.TrimSuffix(what, "."), strings.TrimSuffix(fix, "."))
}

func (r *run) skip(check, why string) {
	r.res.Skipped++
	fmt.Fprintf(r.w, "- %s: skipped (%s)\n", check, why)
}

// note is a line that is not a check: what the doctor could not clean up.
func (r *run) note(msg string) { fmt.Fprintf(r.w, "- %s\n", msg) }

// Check names.
const (
	chkCredentials = "credentials"
	chkHead        = "HeadObject (callback confirmation)"
	chkDelete      = "DeleteObject (deleting uploads outside the limits)"
	chkInitiate    = "InitiateMultipartUpload (Uppy multipart)"
	chkListParts   = "ListParts (Uppy multipart)"
	chkAbort       = "AbortMultipartUpload (Uppy multipart)"
	chkBPA         = "Block Public Access"
)

func (r *run) chkRegion() string { return "bucket " + r.t.Bucket + " in region " + r.t.Region }
func (r *run) chkPut() string    { return "PutObject below " + r.display(r.t.Prefix) }
func (r *run) display(prefix string) string {
	if prefix == "" {
		return "the bucket's root"
	}
	return prefix
}

func (r *run) all() {
	reason := r.bucketChecks()
	r.objectChecks(reason)
	r.stsChecks(reason)
	r.corsChecks()
	r.bpaCheck(reason)
	r.callbackChecks()
}

// describe is an OSS error as code (message), without request ids.
func describe(err error) string {
	if se, ok := err.(oss.ServiceError); ok {
		return se.Code + " (" + strings.TrimSuffix(se.Message, ".") + ")"
	}
	return err.Error()
}

// resourcePrefix is the key prefix up to its first placeholder value: the
// part every user's prefix shares.
func (r *run) resourcePrefix() string {
	if i := strings.Index(r.t.Prefix, DoctorValue); i >= 0 {
		return r.t.Prefix[:i]
	}
	return r.t.Prefix
}

// DoctorValue replaces request placeholders (the user's id, a header) in
// what the doctor expands.
const DoctorValue = "oss-doctor"
