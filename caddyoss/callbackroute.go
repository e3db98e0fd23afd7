package caddyoss

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const (
	// defaultCallbackMaxBody caps callback bodies when max_body is unset.
	defaultCallbackMaxBody = 1 << 20

	// verifiedHeader tells the upstream app the callback was verified.
	verifiedHeader = "X-Oss-Callback-Verified"

	// ossCallbackDeadline is how long OSS waits for the callback answer.
	ossCallbackDeadline = 5 * time.Second
)

// callbackErr is a rejected callback: the status, the reason code it is
// counted under in metrics and a message that names what was wrong (never a
// key or signature).
func callbackErr(status int, reason, msg string) error {
	return caddyhttp.Error(status, &callbackError{reason: reason, msg: msg})
}

// provisionCallback builds the verifier of the callback route and its
// replay guard, whose records live in Caddy's storage.
func (h *Handler) provisionCallback(ctx caddy.Context) error {
	if h.CallbackPath == routeOff {
		return nil
	}
	h.callbackCanon = canonicalRoutePath(h.CallbackPath)
	v, err := newCallbackVerifier(h.Callback.TrustedKeys, h.logger)
	if err != nil {
		return err
	}
	h.verifier = v
	h.replay = newReplayGuard(h.storage, h.logger, h.now)
	go h.replay.purgeLoop(ctx)
	return nil
}

// Cleanup releases the verifier's idle connections.
func (h *Handler) Cleanup() error {
	if h.verifier != nil {
		h.verifier.cleanup()
	}
	return nil
}

// serveCallback verifies an OSS upload callback and, only if it verifies,
// passes the request (same method, path, query, headers and body, plus
// X-Oss-Callback-Verified: true) to next. The upstream's answer goes back to
// OSS unchanged.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	r.Header.Del(verifiedHeader)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.rejectCallback(r, callbackErr(http.StatusMethodNotAllowed, reasonMethod, "callbacks must be POST"))
	}
	sigB64 := r.Header.Get("Authorization")
	keyURL := r.Header.Get("X-Oss-Pub-Key-Url")
	switch {
	case sigB64 == "":
		return h.rejectCallback(r, callbackErr(http.StatusBadRequest, reasonHeaders, "missing Authorization header"))
	case keyURL == "":
		return h.rejectCallback(r, callbackErr(http.StatusBadRequest, reasonHeaders, "missing x-oss-pub-key-url header"))
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return h.rejectCallback(r, callbackErr(http.StatusBadRequest, reasonHeaders, "Authorization is not valid base64"))
	}

	maxBody := h.Callback.MaxBody
	if maxBody <= 0 {
		maxBody = defaultCallbackMaxBody
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		return h.rejectCallback(r, err)
	}
	if want := r.Header.Get("Content-MD5"); want != "" {
		sum := md5.Sum(body)
		if base64.StdEncoding.EncodeToString(sum[:]) != want {
			return h.rejectCallback(r, callbackErr(http.StatusBadRequest, reasonBody, "Content-MD5 does not match the body"))
		}
	}

	keys, err := h.verifier.keysFor(r.Context(), keyURL)
	if err != nil {
		return h.rejectCallback(r, err)
	}
	msg, err := callbackStringToSign(originalRequestURI(r), body)
	if err != nil {
		return h.rejectCallback(r, callbackErr(http.StatusBadRequest, reasonSignature, "request path is not valid percent-encoding"))
	}
	verified := false
	for _, k := range keys {
		if verifyPKCS1v15MD5(k, msg, sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return h.rejectCallback(r, callbackErr(http.StatusForbidden, reasonSignature, errBadSignature.Error()))
	}

	expires := h.now().Add(unboundReplayTTL)
	var facts map[string]string
	if h.bodyTpl != nil {
		exp, vars, err := h.checkBound(r.Context(), r, body)
		if err != nil {
			return h.rejectCallback(r, err)
		}
		expires = exp
		facts = map[string]string{"bucket": vars["bucket"], "object": vars["object"], "size": vars["size"], "etag": vars["etag"]}
		// The header is not signed: the app reads the body as it was checked.
		r.Header.Set("Content-Type", h.Callback.contentType())
	} else {
		facts = callbackFacts(body)
		if b := facts["bucket"]; h.Bucket != "" && b != "" && b != h.Bucket {
			return h.rejectCallback(r, callbackErr(http.StatusForbidden, reasonBucket, fmt.Sprintf("callback names bucket %q, not the configured one", b)))
		}
	}
	fresh, err := h.replay.claim(r.Context(), callbackID(msg), expires)
	if err != nil {
		h.logger.Error("recording the callback against replays failed", zap.Error(err), zapRemote(r))
		err = callbackErr(http.StatusServiceUnavailable, reasonStorage, "callback replay records are unavailable")
		countCallback(err)
		return err
	}
	countCallback(nil)
	if !fresh {
		// OSS and the uploader see success; the app saw this callback once.
		ossMetrics.deliveries.WithLabelValues(deliveryDuplicate).Inc()
		h.logger.Info("duplicate callback answered, not forwarded",
			zap.String("object", facts["object"]), zapRemote(r))
		return writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate"})
	}

	r.Header.Set(verifiedHeader, "true")
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	repl := replacer(r)
	repl.Set("http.oss_upload.callback.verified", true)
	for k, v := range facts {
		if v != "" {
			repl.Set("http.oss_upload.callback."+k, v)
		}
	}
	h.logger.Debug("callback verified",
		zap.String("bucket", facts["bucket"]), zap.String("object", facts["object"]), zapRemote(r))

	rec := &callbackWatch{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	start := time.Now()
	err = next.ServeHTTP(rec, r)
	elapsed := time.Since(start)
	countDelivery(rec.status, err)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	ct := rec.Header().Get("Content-Type")
	if err == nil && (status != http.StatusOK || !strings.Contains(ct, "json") || elapsed > ossCallbackDeadline) {
		h.logger.Warn("upstream answer breaks OSS's callback contract (200, JSON, within 5 s): OSS will report CallbackFailed",
			zap.Int("status", status), zap.String("content_type", ct), zap.Duration("elapsed", elapsed),
			zap.String("object", facts["object"]))
	}
	return err
}

// rejectCallback logs and counts why a callback was refused and returns
// the error.
func (h *Handler) rejectCallback(r *http.Request, err error) error {
	h.logger.Warn("callback rejected", zap.Error(err), zapRemote(r))
	countCallback(err)
	return err
}

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			// e.g. request_body's limit: its status, counted as body.
			msg := http.StatusText(he.StatusCode)
			if he.Err != nil {
				msg = he.Err.Error()
			}
			he.Err = &callbackError{reason: reasonBody, msg: msg}
			return nil, he
		}
		return nil, callbackErr(http.StatusBadRequest, reasonBody, "reading the body failed")
	}
	if int64(len(b)) > limit {
		return nil, callbackErr(http.StatusBadRequest, reasonBody, fmt.Sprintf("body exceeds max_body (%d bytes)", limit))
	}
	return b, nil
}

// originalRequestURI is the request target as OSS sent it, before any
// rewrite in Caddy.
func originalRequestURI(r *http.Request) string {
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.RequestURI != "" {
		return or.RequestURI
	}
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// callbackFacts picks bucket, object, size and etag out of a callback body
// that no template describes (verify_only), for checks, placeholders and
// logs. The body's own shape decides JSON or form: the Content-Type header
// is not signed.
func callbackFacts(body []byte) map[string]string {
	out := map[string]string{}
	names := []string{"bucket", "object", "size", "etag"}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&m) == nil {
			for _, n := range names {
				if v, ok := m[n]; ok && v != nil {
					out[n] = fmt.Sprint(v)
				}
			}
		}
		return out
	}
	if q, err := url.ParseQuery(string(body)); err == nil {
		for _, n := range names {
			if v := q.Get(n); v != "" {
				out[n] = v
			}
		}
	}
	return out
}

// callbackWatch records the upstream's status for the 5-second rule.
type callbackWatch struct {
	*caddyhttp.ResponseWriterWrapper
	status int
}

func (c *callbackWatch) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriterWrapper.WriteHeader(status)
}

func (c *callbackWatch) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.ResponseWriterWrapper.Write(b)
}

// Interface guard.
var _ caddy.CleanerUpper = (*Handler)(nil)
