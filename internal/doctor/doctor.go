package doctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// bucketChecks checks the credentials and the bucket's region; it returns
// why the checks that need the bucket cannot run, or "".
func (r *run) bucketChecks() string {
	t := r.t
	if t.CredentialsErr != nil {
		r.fail(chkCredentials, t.CredentialsErr.Error(),
			"set access_key_id and access_key_secret, or credentials for Alibaba Cloud's default credential chain (see docs/operations.md)")
		r.skip(r.chkRegion(), "no credentials")
		return "no credentials"
	}
	id := r.opts.probeID
	if id == "" {
		random := make([]byte, 8)
		_, _ = rand.Read(random)
		id = hex.EncodeToString(random)
	}
	r.probeDir = t.Prefix + ".oss-doctor/" + id + "/"

	base := []oss.ClientOption{oss.SetCredentialsProvider(t.Credentials), oss.Timeout(5, 15)}
	v1, err := oss.New(t.Endpoint, "", "", append(base, oss.AuthVersion(oss.AuthV1))...)
	if err == nil {
		r.v1 = v1
		var c *oss.Client
		opts := append(base, oss.Region(t.Region))
		if !t.SignatureV1 {
			opts = append(opts, oss.AuthVersion(oss.AuthV4))
		}
		if c, err = oss.New(t.Endpoint, "", "", opts...); err == nil {
			r.server, err = c.Bucket(t.Bucket)
		}
		if err == nil {
			if c, err = oss.New(t.Endpoint, "", "", append(base, oss.Region(t.Region), oss.AuthVersion(oss.AuthV4))...); err == nil {
				r.v4, err = c.Bucket(t.Bucket)
			}
		}
	}
	if err != nil {
		r.fail(chkCredentials, "cannot build an OSS client for endpoint "+t.Endpoint+": "+err.Error(), "set endpoint to an https URL such as https://oss-"+t.Region+".aliyuncs.com")
		r.skip(r.chkRegion(), "no OSS client")
		return "no OSS client"
	}

	loc, err := r.v1.GetBucketLocation(t.Bucket, oss.WithContext(r.ctx))
	if err == nil {
		r.pass(chkCredentials + " (" + t.CredentialsFrom + ")")
		got := strings.TrimPrefix(loc, "oss-")
		if got != t.Region {
			r.fail(r.chkRegion(), "OSS says the bucket is in "+got,
				"set region "+got+r.endpointFix(got))
			return "the bucket is in another region"
		}
		r.pass(r.chkRegion())
		return ""
	}
	se, ok := err.(oss.ServiceError)
	if !ok {
		r.fail(chkCredentials, "cannot reach OSS at "+t.Endpoint+": "+err.Error(), "check endpoint and this machine's network")
		r.skip(r.chkRegion(), "OSS unreachable")
		return "OSS unreachable"
	}
	switch {
	case se.Code == "NoSuchBucket":
		r.skip(chkCredentials, "the bucket does not exist")
		r.fail(r.chkRegion(), "OSS has no bucket "+t.Bucket, "create the bucket in "+t.Region+", or fix bucket")
		return "no bucket"
	case se.Endpoint != "":
		got := endpointRegion(se.Endpoint)
		r.skip(chkCredentials, "the bucket is in another region")
		r.fail(r.chkRegion(), "OSS says the bucket must be addressed at "+se.Endpoint, "set region "+got+r.endpointFix(got))
		return "the bucket is in another region"
	case se.Code == "AccessDenied":
		r.pass(chkCredentials + " (" + t.CredentialsFrom + ")")
		r.skip(r.chkRegion(), "these credentials may not call GetBucketLocation; PutObject below shows whether requests reach the bucket")
		return ""
	case credentialCodes[se.Code]:
		r.fail(chkCredentials+" ("+t.CredentialsFrom+")", "OSS refused them: "+describe(err),
			"check access_key_id and access_key_secret, or what the credential chain provides")
		r.skip(r.chkRegion(), "credentials refused")
		return "credentials refused"
	}
	r.fail(chkCredentials, "GetBucketLocation failed: "+describe(err), "check endpoint, bucket and credentials")
	r.skip(r.chkRegion(), "GetBucketLocation failed")
	return "GetBucketLocation failed"
}

var credentialCodes = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "InvalidSecurityToken": true,
	"SecurityTokenExpired": true, "AccessKeyDisabled": true,
}

func (r *run) endpointFix(region string) string {
	if r.t.Endpoint != "" && !strings.Contains(r.t.Endpoint, "oss-"+r.t.Region+".") {
		return " (and endpoint and upload_url, if you set them, to that region's)"
	}
	return " (endpoint and upload_url follow it unless you set them: https://oss-" + region + ".aliyuncs.com)"
}

// endpointRegion reads the region of an OSS endpoint host such as
// oss-cn-hangzhou.aliyuncs.com.
func endpointRegion(host string) string {
	host = strings.TrimPrefix(host, "oss-")
	host, _, _ = strings.Cut(host, ".")
	return strings.TrimSuffix(host, "-internal")
}

// describe is an OSS error as code (message), without request ids.
func describe(err error) string {
	if se, ok := err.(oss.ServiceError); ok {
		return se.Code + " (" + strings.TrimSuffix(se.Message, ".") + ")"
	}
	return err.Error()
}

// allow is the fix for a denied action.
func (r *run) allow(action string) string {
	return "allow " + action + " on acs:oss:*:*:" + r.t.Bucket + "/" + r.resourcePrefix() + "* to the server's RAM user or role"
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

func (r *run) objectChecks(reason string) {
	t := r.t
	uppyChecks := []string{chkInitiate, chkListParts, chkAbort}
	if reason != "" {
		r.skip(r.chkPut(), reason)
		r.skipUnless(t.BoundCallbacks, chkHead, reason, "no bound callbacks")
		r.skipUnless(t.BoundCallbacks, chkDelete, reason, "no bound callbacks")
		for _, c := range uppyChecks {
			r.skipUnless(t.Uppy, c, reason, "the Uppy routes are off")
		}
		return
	}
	key := r.probeDir + "probe.txt"
	err := r.server.PutObject(key, strings.NewReader(DoctorValue), oss.ContentType(t.ContentType),
		oss.ObjectACL(oss.ACLDefault), oss.WithContext(r.ctx))
	stored := err == nil
	if err != nil {
		r.fail(r.chkPut(), "OSS refused PutObject of "+key+": "+describe(err), r.allow("oss:PutObject"))
		r.skipUnless(t.BoundCallbacks, chkHead, "no object to read", "no bound callbacks")
	} else {
		r.pass(r.chkPut())
		if !t.BoundCallbacks {
			r.skip(chkHead, "no bound callbacks")
		} else if _, err := r.server.GetObjectDetailedMeta(key, oss.WithContext(r.ctx)); err != nil {
			r.fail(chkHead, "OSS refused HeadObject: "+describe(err)+"; every bound callback would be refused", r.allow("oss:GetObject"))
		} else {
			r.pass(chkHead)
		}
	}
	if stored {
		err := r.server.DeleteObject(key, oss.WithContext(r.ctx))
		switch {
		case err == nil && t.BoundCallbacks:
			r.pass(chkDelete)
		case err == nil:
			r.skip(chkDelete, "no bound callbacks")
		case t.BoundCallbacks:
			r.fail(chkDelete, "OSS refused DeleteObject: "+describe(err)+"; uploads outside the limits would stay in the bucket",
				r.allow("oss:DeleteObject")+", and delete "+key+" by hand")
		default:
			r.skip(chkDelete, "no bound callbacks")
			r.note("cleanup: " + key + " is left in the bucket (DeleteObject: " + describe(err) + "); delete it by hand")
		}
	} else {
		r.skipUnless(t.BoundCallbacks, chkDelete, "no object to delete", "no bound callbacks")
	}

	if !t.Uppy {
		for _, c := range uppyChecks {
			r.skip(c, "the Uppy routes are off")
		}
		return
	}
	imur, err := r.server.InitiateMultipartUpload(r.probeDir+"multipart.bin", oss.ContentType(t.ContentType),
		oss.ObjectACL(oss.ACLDefault), oss.WithContext(r.ctx))
	if err != nil {
		r.fail(chkInitiate, "OSS refused InitiateMultipartUpload: "+describe(err), r.allow("oss:PutObject"))
		r.skip(chkListParts, "no multipart upload")
		r.skip(chkAbort, "no multipart upload")
		return
	}
	r.pass(chkInitiate)
	if _, err := r.server.ListUploadedParts(imur, oss.WithContext(r.ctx)); err != nil {
		r.fail(chkListParts, "OSS refused ListParts: "+describe(err)+"; Uppy's multipart uploads could not complete", r.allow("oss:ListParts"))
	} else {
		r.pass(chkListParts)
	}
	if err := r.server.AbortMultipartUpload(imur, oss.WithContext(r.ctx)); err != nil {
		r.fail(chkAbort, "OSS refused AbortMultipartUpload: "+describe(err)+"; uploads outside the limits would stay as parts",
			r.allow("oss:AbortMultipartUpload")+", and abort upload "+imur.UploadID+" of "+imur.Key+" by hand (or let a lifecycle rule do it)")
	} else {
		r.pass(chkAbort)
	}
}

// skipUnless skips check for reason when on, else for off.
func (r *run) skipUnless(on bool, check, reason, off string) {
	if on {
		r.skip(check, reason)
	} else {
		r.skip(check, off)
	}
}
