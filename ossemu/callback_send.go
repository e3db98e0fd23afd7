package ossemu

// Sending a callback as OSS does: signed with the callback key, to each
// callbackUrl in turn, and the uploader's answer from the callback's.

import (
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

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
	if e.opts.RefusePrivateCallbacks && privateHost(ctx, u.Hostname()) {
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

// privateHost reports whether host is, or resolves to, an address OSS
// does not call back: loopback, private, link-local or unspecified. A name
// that does not resolve counts as private: OSS could not connect either.
func privateHost(ctx context.Context, host string) bool {
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil || len(addrs) == 0 {
			return true
		}
		ips = ips[:0]
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
			return true
		}
	}
	return false
}
