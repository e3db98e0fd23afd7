package doctor

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// stsCheck names.
func (r *run) chkAssume() string { return "sts:AssumeRole " + r.t.STS.RoleARN }
func (r *run) chkSTSPut() string {
	return "PutObject with the STS credentials below " + r.display(r.t.Prefix)
}

func (r *run) stsChecks(reason string) {
	t := r.t
	if t.STS == nil {
		r.skip("sts:AssumeRole", "the STS route is off")
		return
	}
	if t.CredentialsErr != nil {
		r.skip(r.chkAssume(), "no credentials")
		r.skip(r.chkSTSPut(), "no credentials")
		return
	}
	c, err := t.STS.AssumeRole(r.ctx, t.STS.SessionName, t.STS.Policy)
	if err != nil {
		what, fix := r.stsFailure(err)
		r.fail(r.chkAssume(), what, fix)
		r.skip(r.chkSTSPut(), "no STS credentials")
		return
	}
	r.pass(r.chkAssume())
	if reason != "" {
		r.skip(r.chkSTSPut(), reason)
		return
	}
	opts := []oss.ClientOption{oss.SetCredentialsProvider(staticProvider{c}), oss.Timeout(5, 15), oss.Region(t.Region)}
	if !t.SignatureV1 {
		opts = append(opts, oss.AuthVersion(oss.AuthV4))
	}
	client, err := oss.New(t.Endpoint, "", "", opts...)
	var b *oss.Bucket
	if err == nil {
		b, err = client.Bucket(t.Bucket)
	}
	if err != nil {
		r.fail(r.chkSTSPut(), err.Error(), "check endpoint")
		return
	}
	key := r.probeDir + "sts.txt"
	if err := b.PutObject(key, strings.NewReader(DoctorValue), oss.ContentType(t.ContentType), oss.WithContext(r.ctx)); err != nil {
		r.fail(r.chkSTSPut(), "OSS refused the role's PutObject of "+key+": "+describe(err)+"; STS uploads would fail",
			"allow oss:PutObject on acs:oss:*:*:"+t.Bucket+"/"+r.resourcePrefix()+"* in the policy of role "+t.STS.RoleARN)
		return
	}
	r.pass(r.chkSTSPut())
	if err := r.server.DeleteObject(key, oss.WithContext(r.ctx)); err != nil {
		r.note("cleanup: " + key + " is left in the bucket (DeleteObject: " + describe(err) + "); delete it by hand")
	}
}

// stsFailure explains an AssumeRole error.
func (r *run) stsFailure(err error) (what, fix string) {
	arn := r.t.STS.RoleARN
	var se *tea.SDKError
	if !errors.As(err, &se) {
		return "AssumeRole failed: " + err.Error(), "check sts.endpoint and this machine's network"
	}
	code := tea.StringValue(se.Code)
	msg := strings.TrimSpace(tea.StringValue(se.Message))
	var data struct{ Message string }
	if json.Unmarshal([]byte(tea.StringValue(se.Data)), &data) == nil && data.Message != "" {
		msg = data.Message
	}
	what = "STS refused AssumeRole: " + code + " (" + strings.TrimSuffix(msg, ".") + ")"
	switch {
	case code == "EntityNotExist.Role":
		return what, "check sts.role_arn: no role " + arn + " in this account"
	case code == "NoPermission" || strings.HasPrefix(code, "NoPermission"):
		return what, "allow sts:AssumeRole on " + arn + " to the server's RAM user or role, and let the role's trust policy name its account"
	case code == "InvalidParameter.DurationSeconds":
		return what, "raise the role's maximum session duration to at least " + r.t.STS.Duration.String() + ", or lower sts.duration"
	case code == "InvalidParameter.RoleArn":
		return what, "sts.role_arn must look like acs:ram::<account-id>:role/<name>"
	case strings.HasPrefix(code, "InvalidParameter.Policy"):
		return what, "shorten key_prefix: the session policy for it is refused"
	case strings.HasPrefix(code, "InvalidAccessKeyId"), code == "SignatureDoesNotMatch", strings.Contains(code, "SecurityToken"):
		return what, "check the server's credentials"
	}
	return what, "check sts.role_arn and sts.endpoint"
}

type staticProvider struct{ c Credentials }

func (p staticProvider) GetCredentials() oss.Credentials { return p.c }

// stsHeaders are the request headers ali-oss sends from a browser.
var stsHeaders = []string{"authorization", "content-type", "x-oss-date", "x-oss-security-token", "x-oss-user-agent"}

func (r *run) corsChecks() {
	t := r.t
	origins := t.Origins
	if r.opts.Origin != "" {
		origins = []string{r.opts.Origin}
	}
	if !t.PostObject && !t.Presign && !t.Uppy && t.STS == nil {
		r.skip("CORS", "no signing route is on")
		return
	}
	if len(origins) == 0 {
		r.skip("CORS", "no site address to take the origin from; pass --origin https://your.site")
		return
	}
	for _, o := range origins {
		r.corsOrigin(o)
	}
}

func (r *run) corsOrigin(origin string) {
	t := r.t
	rule := "add a CORS rule to bucket " + t.Bucket + ": AllowedOrigin " + origin +
		", AllowedMethod POST and PUT, AllowedHeader *, ExposeHeader ETag (see docs/install.md)"
	var putExpose *preflightAnswer
	try := func(check, method string, headers []string) {
		a := r.preflight(origin, method, headers)
		switch {
		case a.err != nil:
			r.fail(check, "the preflight to "+t.UploadURL+" failed: "+a.err.Error(), "check upload_url")
		case !a.ok:
			what := "OSS refused the browser's preflight (" + method
			if len(headers) > 0 {
				what += " with " + strings.Join(headers, ", ")
			}
			r.fail(check, what+"): "+a.refusal, rule)
		default:
			r.pass(check)
			if method == http.MethodPut && putExpose == nil {
				putExpose = &a
			}
		}
	}
	if t.PostObject || t.Uppy {
		try("CORS: "+origin+" may POST (PostObject)", http.MethodPost, nil)
	}
	if t.Presign {
		try("CORS: "+origin+" may PUT with Content-Type (presigned PUT)", http.MethodPut, []string{"content-type"})
	}
	if t.Uppy {
		try("CORS: "+origin+" may PUT parts (Uppy multipart)", http.MethodPut, nil)
	}
	if t.STS != nil {
		hs := stsHeaders
		if t.Callback != nil {
			hs = append(hs[:len(hs):len(hs)], "x-oss-callback", "x-oss-callback-var")
		}
		try("CORS: "+origin+" may PUT with the SDK's headers (STS)", http.MethodPut, hs)
		try("CORS: "+origin+" may POST with the SDK's headers (STS multipart)", http.MethodPost, hs)
	}
	if !t.Uppy && t.STS == nil {
		return
	}
	check := "CORS: ETag exposed to " + origin + " (multipart)"
	switch {
	case putExpose == nil:
		r.skip(check, "no PUT allowed")
	case !hasToken(putExpose.expose, "etag"):
		r.fail(check, "the rule that allows PUT from "+origin+" does not expose ETag, which Uppy and ali-oss read after every part",
			"add ExposeHeader ETag to that CORS rule of bucket "+t.Bucket)
	default:
		r.pass(check)
	}
}

type preflightAnswer struct {
	ok      bool
	refusal string // why not ok
	expose  string // Access-Control-Expose-Headers
	err     error
}

// preflight sends the OPTIONS request a browser sends before an upload
// to upload_url.
func (r *run) preflight(origin, method string, headers []string) preflightAnswer {
	u := strings.TrimSuffix(r.t.UploadURL, "/") + "/" + (&url.URL{Path: r.t.Prefix + ".oss-doctor/cors-probe"}).EscapedPath()
	req, err := http.NewRequestWithContext(r.ctx, http.MethodOptions, u, nil)
	if err != nil {
		return preflightAnswer{err: err}
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	if len(headers) > 0 {
		req.Header.Set("Access-Control-Request-Headers", strings.Join(headers, ","))
	}
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return preflightAnswer{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	a := preflightAnswer{expose: resp.Header.Get("Access-Control-Expose-Headers")}
	allowOrigin := resp.Header.Get("Access-Control-Allow-Origin")
	switch {
	case resp.StatusCode != http.StatusOK:
		var e struct{ Code string }
		_ = xml.Unmarshal(body, &e)
		a.refusal = resp.Status
		if e.Code != "" {
			a.refusal = resp.Status[:3] + " " + e.Code
		}
	case allowOrigin != origin && allowOrigin != "*":
		a.refusal = "the answer allows origin " + quoteOrNone(allowOrigin)
	default:
		a.ok = true
	}
	return a
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return `"` + s + `"`
}

func hasToken(list, token string) bool {
	for _, v := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(v), token) {
			return true
		}
	}
	return false
}

func (r *run) bpaCheck(reason string) {
	t := r.t
	switch {
	case t.ClientACL == "":
		r.skip(chkBPA, "every route on pins the object ACL")
		return
	case reason != "":
		r.skip(chkBPA, reason)
		return
	}
	resp, err := r.v4.Do(http.MethodGet, "", map[string]interface{}{"publicAccessBlock": nil},
		[]oss.Option{oss.WithContext(r.ctx)}, nil, nil)
	if err != nil {
		r.skip(chkBPA, "GetBucketPublicAccessBlock: "+describe(err)+"; check it in the OSS console")
		return
	}
	defer resp.Body.Close()
	var conf struct {
		Block bool `xml:"BlockPublicAccess"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&conf); err != nil {
		r.skip(chkBPA, "GetBucketPublicAccessBlock answered what the doctor cannot read; check it in the OSS console")
		return
	}
	if !conf.Block {
		r.fail(chkBPA, "it is off for bucket "+t.Bucket+", and "+t.ClientACL+" (x-oss-object-acl public-read)",
			"turn on Block Public Access for bucket "+t.Bucket+" (OSS console: Permission Control, or PutBucketPublicAccessBlock)")
		return
	}
	r.pass(chkBPA + " is on")
}

const (
	chkCallbackHTTPS  = "callback URL is https"
	chkCallbackPublic = "callback URL is public"
	chkCallbackSNI    = "callback asks OSS for SNI"
)

func (r *run) callbackChecks() {
	cb := r.t.Callback
	if cb == nil {
		r.skip("callback URL", "no callback url configured")
		return
	}
	u, err := url.Parse(cb.URL)
	if err != nil || u.Host == "" {
		r.fail(chkCallbackHTTPS, "callback url "+cb.URL+" is not an absolute URL", "set callback url to https://<this site>/oss/callback")
		return
	}
	https := u.Scheme == "https"
	if https {
		r.pass(chkCallbackHTTPS)
	} else {
		r.fail(chkCallbackHTTPS, cb.URL+" is plain http: the callback crosses the network in clear, and Caddy's automatic HTTPS redirects it, which OSS does not follow",
			"use https://"+u.Host+u.EscapedPath())
	}
	r.publicCheck(u.Hostname())
	switch {
	case !https:
		r.skip(chkCallbackSNI, "not https")
	case cb.SNI:
		r.pass(chkCallbackSNI)
	default:
		r.fail(chkCallbackSNI, "OSS connects without a TLS server name, and Caddy picks its certificate by name, so the handshake fails",
			"remove "+cb.SNIOption+" (or set default_sni for this site)")
	}
}

func (r *run) publicCheck(host string) {
	fix := "use a public DNS name of this site in callback url; OSS calls it from the internet (a site OSS cannot reach confirms its uploads instead: confirm_path, callback confirm_only)"
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		r.fail(chkCallbackPublic, host+" is loopback: OSS refuses it", fix)
		return
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		var err error
		ips, err = r.opts.LookupIP(ctx, host)
		cancel()
		if err != nil || len(ips) == 0 {
			r.fail(chkCallbackPublic, host+" does not resolve here", fix)
			return
		}
	}
	for _, ip := range ips {
		if kind := nonPublic(ip); kind != "" {
			what := host + " is " + kind
			if net.ParseIP(host) == nil {
				what = host + " resolves to " + ip.String() + " (" + kind + ")"
			}
			r.fail(chkCallbackPublic, what+": OSS does not call loopback or private addresses", fix)
			return
		}
	}
	r.pass(chkCallbackPublic)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// nonPublic says what kind of address ip is when OSS cannot call it.
func nonPublic(ip net.IP) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "not an IP address"
	}
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(), cgnat.Contains(a):
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast(), a.IsLinkLocalMulticast():
		return "not a unicast address"
	}
	return ""
}
