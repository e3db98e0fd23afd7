package caddyoss

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const (
	// defaultCallbackMaxBody caps callback bodies when max_body is unset.
	defaultCallbackMaxBody = 1 << 20

	// verifiedHeader tells the upstream app the callback was verified.
	verifiedHeader = "X-Oss-Callback-Verified"
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
	if h.Callback.Delivery == deliveryModeQueued {
		if h.queue, err = newDeliveryQueue(h, ctx); err != nil {
			return err
		}
		qctx, stop := context.WithCancel(ctx)
		h.queue.stop, h.queue.stopped = stop, make(chan struct{})
		go func() {
			defer close(h.queue.stopped)
			h.queue.run(qctx)
		}()
	}
	return nil
}

// Cleanup stops the delivery queue (so that the next config's queue takes
// over its records without two workers on one record) and releases the
// verifier's idle connections.
func (h *Handler) Cleanup() error {
	if q := h.queue; q != nil {
		q.stop()
		select {
		case <-q.stopped:
		case <-time.After(queueStopWait):
			h.logger.Warn("the callback queue did not stop in time; its attempts in flight finish on their own")
		}
	}
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
	if c, ok := r.Context().Value(deliveryCtxKey{}).(*queuedCallback); ok {
		// A queued callback, verified when it arrived, sent again.
		prepareForward(r, c.ID, c.Body)
		return next.ServeHTTP(w, r)
	}
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

	id := callbackID(msg)
	queued := h.queue != nil && h.enqueue(r, id, body, facts["object"])
	prepareForward(r, id, body)
	repl := replacer(r)
	repl.Set("http.oss_upload.callback.verified", true)
	for k, v := range facts {
		if v != "" {
			repl.Set("http.oss_upload.callback."+k, v)
		}
	}
	if ce := h.logger.Check(zapcore.DebugLevel, "callback verified"); ce != nil { // the fields are built only when debug is on
		ce.Write(zap.String("bucket", facts["bucket"]), zap.String("object", facts["object"]), zapRemote(r))
	}

	ans := newAnswerRecorder()
	if !queued {
		err = next.ServeHTTP(ans, r)
		countDelivery(ans.status, err)
		if err != nil {
			return err
		}
		if ans.status != http.StatusOK {
			h.logger.Warn("upstream answer breaks OSS's callback contract (200, JSON, within 5 s): OSS will report CallbackFailed",
				zap.Int("status", ans.status), zap.String("object", facts["object"]))
		}
		status, b := ans.normalized()
		return writeAnswer(w, status, b)
	}

	// The first attempt, within answer_within; the queue does the rest.
	defer deliveriesInFlight.Delete(id)
	actx, cancel := context.WithTimeout(r.Context(), time.Duration(h.Callback.AnswerWithin))
	defer cancel()
	err = next.ServeHTTP(ans, r.WithContext(actx))
	if ans.answered(err) && actx.Err() == nil {
		h.queue.done(context.WithoutCancel(r.Context()), id)
		countDelivery(ans.status, nil)
		status, b := ans.normalized()
		return writeAnswer(w, status, b)
	}
	ossMetrics.deliveries.WithLabelValues(deliveryQueued).Inc()
	h.logger.Info("callback queued: the upstream did not take it in time",
		zap.String("id", id), zap.String("object", facts["object"]), zap.Int("status", ans.status), zap.Error(err))
	b, _ := json.Marshal(map[string]string{
		"status":          "queued",
		"message":         "the upload is stored and its callback will be delivered to the app",
		"idempotency_key": id,
	})
	return writeAnswer(w, http.StatusOK, b)
}

// enqueue persists a verified callback before the upstream sees it, due
// after the first attempt has had its chance. It reports false (and the
// callback is relayed directly) when storage fails.
func (h *Handler) enqueue(r *http.Request, id string, body []byte, object string) bool {
	srvName := ""
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		srvName = srv.Name()
	}
	now := time.Now()
	c := &queuedCallback{
		ID: id, Server: srvName, Method: r.Method, URI: originalRequestURI(r), Host: r.Host,
		RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), Body: body, Object: object,
		Created: now, NextAt: now.Add(time.Duration(h.Callback.AnswerWithin) + backoffBase),
	}
	deliveriesInFlight.Store(id, true)
	if err := h.queue.put(context.WithoutCancel(r.Context()), c); err != nil {
		deliveriesInFlight.Delete(id)
		h.logger.Error("queueing the callback failed; relaying it directly", zap.Error(err), zapRemote(r))
		return false
	}
	return true
}

// prepareForward makes r the request the upstream gets: the verified
// body, X-Oss-Callback-Verified and the callback's Idempotency-Key, the
// same for every attempt and every copy of one upload.
func prepareForward(r *http.Request, id string, body []byte) {
	r.Header.Set(verifiedHeader, "true")
	r.Header.Set("Idempotency-Key", id)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
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

// Interface guard.
var _ caddy.CleanerUpper = (*Handler)(nil)
