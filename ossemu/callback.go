package ossemu

import (
	"bytes"
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image formats for ${imageInfo.*}
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// callbackSpec is a decoded callback parameter.
type callbackSpec struct {
	urls     []string
	host     string
	body     string
	bodyType string
	// sni is callbackSNI: OSS sends a TLS server name to an https
	// callbackUrl only when the parameter asks for it.
	sni bool
}

// CallbackRecord is one callback the emulator sent, for tests.
type CallbackRecord struct {
	URL  string
	Body string
	// Header is what the emulator sent with the body (Authorization,
	// x-oss-pub-key-url, Content-Type, …), so a test can send the same
	// callback again.
	Header http.Header
	Status int    // 0 when the callback server could not be reached
	Answer string // the callback server's body
	Err    string // why the callback failed, if it did
}

// Callbacks lists the callbacks sent so far, oldest first.
func (e *Emulator) Callbacks() []CallbackRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]CallbackRecord(nil), e.callLog...)
}

// errCallbackArg is InvalidArgument about the callback parameter; ec is
// the documented error code, or "" where none is documented.
func errCallbackArg(msg, value, ec string) *ossError {
	return errInvalidArgument(msg, "callback", value).ec(ec)
}

// parseCallback decodes the callback parameter; empty means none.
func parseCallback(b64 string) (*callbackSpec, *ossError) {
	if b64 == "" {
		return nil, nil
	}
	if len(b64) > 5<<10 {
		return nil, errCallbackArg("The callback configuration is too long (over 5 KB).", "", "")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errCallbackArg("The callback configuration is not base64 encoded.", b64, "0007-00000002")
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, errCallbackArg("The callback configuration is not json format.", string(raw), "")
	}
	str := func(k string) (string, bool) {
		v, ok := doc[k]
		if !ok {
			return "", true
		}
		s, isStr := v.(string)
		return s, isStr
	}
	cbURL, ok1 := str("callbackUrl")
	host, ok2 := str("callbackHost")
	body, ok3 := str("callbackBody")
	bodyType, ok4 := str("callbackBodyType")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, errCallbackArg("The callback configuration fields must be strings.", string(raw), "")
	}
	spec := &callbackSpec{host: host, body: body, bodyType: bodyType}
	if v, ok := doc["callbackSNI"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, errCallbackArg("The callbackSNI of the callback configuration must be true or false.", string(raw), "")
		}
		spec.sni = b
	}
	if cbURL == "" {
		return nil, errCallbackArg("The callbackUrl of the callback configuration is empty.", string(raw), "0007-00000004")
	}
	for _, u := range strings.Split(cbURL, ";") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, errCallbackArg("The callbackUrl of the callback configuration is invalid.", string(raw), "0007-00000004")
		}
		if p := pu.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, errCallbackArg("The callbackUrl port is invalid.", string(raw), "0007-00000004")
			}
		}
		spec.urls = append(spec.urls, u)
	}
	if len(spec.urls) > 5 {
		return nil, errCallbackArg("The callbackUrl has more than 5 URLs.", string(raw), "0007-00000004")
	}
	if body == "" {
		return nil, errCallbackArg("The callbackBody of the callback configuration is empty.", string(raw), "0007-00000011")
	}
	switch bodyType {
	case "":
		spec.bodyType = "application/x-www-form-urlencoded"
	case "application/x-www-form-urlencoded", "application/json":
	default:
		return nil, errCallbackArg("The callbackBodyType is not supported.", string(raw), "")
	}
	if err := checkTemplate(body); err != nil {
		return nil, errCallbackArg("The callbackBody is invalid: "+err.Error(), string(raw), "")
	}
	return spec, nil
}

func checkTemplate(t string) error {
	for {
		i := strings.Index(t, "${")
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return fmt.Errorf("unclosed variable %q", t[i:])
		}
		if j == 2 {
			return fmt.Errorf("empty variable at %q", t[i:])
		}
		t = t[i+j+1:]
	}
}

// parseCallbackVar decodes callback-var: {"x:name": "value", …}.
func parseCallbackVar(b64 string) (map[string]string, *ossError) {
	vars := map[string]string{}
	if b64 == "" {
		return vars, nil
	}
	if len(b64) > 5<<10 {
		return nil, errInvalidArgument("The callback-var is too long (over 5 KB).", "callback-var", "")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errInvalidArgument("The callback-var is not base64 encoded.", "callback-var", b64).ec("0007-00000002")
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, errInvalidArgument("The callback-var is not json format.", "callback-var", string(raw))
	}
	for k, v := range doc {
		s, ok := v.(string)
		if !strings.HasPrefix(k, "x:") || !ok {
			return nil, errInvalidArgument(`The callback-var must be {"x:name":"value",...}.`, "callback-var", string(raw))
		}
		vars[k] = s
	}
	return vars, nil
}

// uploadFacts are what system variables describe.
type uploadFacts struct {
	bucket, key, etag, mimeType, contentMD5, clientIP, requestID, operation string
	size                                                                    int64
	crc64                                                                   uint64
	data                                                                    []byte // for imageInfo; nil after multipart
}

// renderBody substitutes ${…} variables: URL-encoded for form bodies,
// JSON literals for JSON bodies (numbers bare, strings quoted).
func renderBody(spec *callbackSpec, f uploadFacts, vars map[string]string) string {
	height, width, format := "", "", ""
	if f.data != nil {
		if cfg, name, err := image.DecodeConfig(bytes.NewReader(f.data)); err == nil {
			height, width = strconv.Itoa(cfg.Height), strconv.Itoa(cfg.Width)
			format = name
			if name == "jpeg" {
				format = "jpg"
			}
		}
	}
	type val struct {
		s   string
		num bool
	}
	sys := map[string]val{
		"bucket":           {f.bucket, false},
		"object":           {f.key, false},
		"etag":             {strings.Trim(f.etag, `"`), false},
		"size":             {strconv.FormatInt(f.size, 10), true},
		"mimeType":         {f.mimeType, false},
		"imageInfo.height": {height, true},
		"imageInfo.width":  {width, true},
		"imageInfo.format": {format, false},
		"crc64":            {strconv.FormatUint(f.crc64, 10), true},
		"contentMd5":       {f.contentMD5, false},
		"vpcId":            {"", false},
		"clientIp":         {f.clientIP, false},
		"reqId":            {f.requestID, false},
		"operation":        {f.operation, false},
	}
	jsonMode := spec.bodyType == "application/json"
	var b strings.Builder
	t := spec.body
	for {
		i := strings.Index(t, "${")
		if i < 0 {
			b.WriteString(t)
			break
		}
		j := strings.IndexByte(t[i:], '}')
		b.WriteString(t[:i])
		name := t[i+2 : i+j]
		t = t[i+j+1:]
		v, ok := sys[name]
		if !ok {
			v = val{vars[name], false}
		}
		switch {
		case !jsonMode:
			b.WriteString(url.QueryEscape(v.s))
		case v.s == "" && (v.num || name == "vpcId"):
			b.WriteString("null")
		case v.num:
			b.WriteString(v.s)
		default:
			q, _ := json.Marshal(v.s)
			b.WriteString(string(q))
		}
	}
	return b.String()
}

// What OSS says of a callback answer it cannot use.
const (
	notJSON            = "Response body is not valid json format."
	noContentLength    = "Response body is not valid: Content-Length is missing."
	badContentLength   = "Response body is not valid: Content-Length is invalid."
	shortContentLength = "Response body is not valid: the body is shorter than its Content-Length."
)

// maxCallbackAnswer is the largest callback answer OSS relays.
const maxCallbackAnswer = 1 << 20

// callbackResult is what the uploader receives after a callback.
type callbackResult struct {
	ok     bool
	body   []byte // the callback server's JSON when ok
	reason string // CallbackFailed message otherwise
}

// sendCallback posts the callback to each URL in turn until one answers
// 200 with JSON, as OSS does.
func (e *Emulator) sendCallback(ctx context.Context, spec *callbackSpec, body, requestID, bucketName string) callbackResult {
	var last callbackResult
	for _, u := range spec.urls {
		last = e.sendOne(ctx, spec, u, body, requestID, bucketName)
		if last.ok {
			return last
		}
	}
	return last
}

func (e *Emulator) sendOne(ctx context.Context, spec *callbackSpec, target, body, requestID, bucketName string) callbackResult {
	rec := CallbackRecord{URL: target, Body: body}
	defer func() {
		e.mu.Lock()
		e.callLog = append(e.callLog, rec)
		e.mu.Unlock()
	}()
	fail := func(reason string) callbackResult {
		rec.Err = reason
		e.logf("ossemu: callback to %s failed: %s", target, reason)
		return callbackResult{reason: reason}
	}
	u, err := url.Parse(target)
	if err != nil {
		return fail("Error status : -1. OSS can not connect to your callbackUrl, please check it.")
	}
	// The signed string: the url-decoded path, the raw query with its '?',
	// a newline, the body.
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	decoded, err := url.PathUnescape(path)
	if err != nil {
		decoded = path
	}
	toSign := decoded
	if u.RawQuery != "" {
		toSign += "?" + u.RawQuery
	}
	toSign += "\n" + body
	digest := md5.Sum([]byte(toSign))
	sig, err := rsa.SignPKCS1v15(rand.Reader, e.key, crypto.MD5, digest[:])
	if err != nil {
		return fail("Error status : -1. signing failed: " + err.Error())
	}
	bodyMD5 := md5.Sum([]byte(body))

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.callbacks.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return fail("Error status : -1. OSS can not connect to your callbackUrl, please check it.")
	}
	if spec.host != "" {
		req.Host = spec.host
	}
	h := req.Header
	h.Set("Content-Type", spec.bodyType)
	h.Set("Content-MD5", base64.StdEncoding.EncodeToString(bodyMD5[:]))
	h.Set("Date", e.now().UTC().Format(http.TimeFormat))
	h.Set("User-Agent", "aliyun-oss-callback")
	h.Set("Authorization", base64.StdEncoding.EncodeToString(sig))
	h.Set("x-oss-pub-key-url", base64.StdEncoding.EncodeToString([]byte(e.pubKeyURL())))
	h.Set("x-oss-bucket", bucketName)
	h.Set("x-oss-request-id", requestID)
	h.Set("x-oss-requester", ownerID)
	h.Set("x-oss-owner", ownerID)
	h.Set("x-oss-signature-version", "1.0")
	h.Set("x-oss-tag", "CALLBACK")
	req.Close = true
	rec.Header = h.Clone()

	start := time.Now()
	client := e.callbacks
	if spec.sni {
		client = e.callbacksSNI
	}
	timedOut := func() callbackResult {
		return fail(fmt.Sprintf("Error status : -1. %s reply timeout, cost: %d MS, timeout: %d MS",
			u.Host, time.Since(start).Milliseconds(), e.callbacks.Timeout.Milliseconds()))
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return timedOut()
		}
		// An answer whose Content-Length is not one non-negative number
		// (abc, -1, two different values) is refused when its header is
		// read.
		if strings.Contains(err.Error(), "Content-Length") {
			return fail(badContentLength)
		}
		return fail("Error status : -1. OSS can not connect to your callbackUrl, please check it.")
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxCallbackAnswer+1))
	rec.Status, rec.Answer = resp.StatusCode, string(answer)
	// OSS accepts only 200 with a Content-Length (a chunked or
	// close-delimited answer fails) and a JSON body of at most 1 MB, all
	// within the timeout. json.Valid refuses a leading UTF-8 BOM, as OSS
	// does.
	switch {
	case err != nil && ctx.Err() != nil:
		return timedOut()
	case errors.Is(err, io.ErrUnexpectedEOF) && resp.ContentLength >= 0:
		return fail(shortContentLength)
	case err != nil:
		return fail("Error status : -1. reading the callback response failed.")
	case resp.StatusCode != http.StatusOK:
		return fail(fmt.Sprintf("Error status : %d.", resp.StatusCode))
	case resp.ContentLength < 0:
		return fail(noContentLength)
	case len(answer) > maxCallbackAnswer:
		return fail("Response body is too large.")
	case !json.Valid(answer):
		return fail(notJSON)
	}
	e.logf("ossemu: callback to %s answered 200", target)
	return callbackResult{ok: true, body: answer}
}

// pubKeyURL is where the callback public key is served.
func (e *Emulator) pubKeyURL() string {
	return "http://" + e.Addr() + CallbackPublicKeyPath
}

// finishWithCallback runs the callback of a completed upload and writes
// the uploader's answer: 200 with the callback's JSON, or 203
// CallbackFailed (the object stays stored).
func (e *Emulator) finishWithCallback(w http.ResponseWriter, r *http.Request, requestID, hostID string, spec *callbackSpec, body string, bucketName string) {
	res := e.sendCallback(r.Context(), spec, body, requestID, bucketName)
	if !res.ok {
		oe := newErr(http.StatusNonAuthoritativeInfo, "CallbackFailed", res.reason)
		if res.reason == notJSON {
			oe.ec("0007-00000205")
		}
		oe.write(w, r, requestID, hostID)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(res.body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.body)
}
