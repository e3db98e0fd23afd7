package caddyoss

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

const (
	// defaultCallbackMaxBody caps callback bodies when max_body is unset.
	defaultCallbackMaxBody = 1 << 20

	// verifiedHeader tells the upstream app the callback was verified.
	verifiedHeader = "X-Oss-Callback-Verified"

	// eventsPrefix holds each handler's upload events in Caddy's storage,
	// under its callback.HandlerID.
	eventsPrefix = "oss_upload/events"

	// unboundWindow: a callback accepted without a binding (verify_only)
	// is remembered for at least one window and at most two, in records
	// grouped by window so that they expire together.
	unboundWindow = 7 * 24 * time.Hour

	// settleTimeout bounds the storage write that records an attempt's
	// outcome, which runs even when OSS has stopped waiting.
	settleTimeout = 10 * time.Second

	// queueStopWait bounds how long Cleanup waits for the queue's attempts
	// in flight.
	queueStopWait = 5 * time.Second
)

// callbackErr is a rejected callback: the status, the reason code it is
// counted under in metrics and a message that names what was wrong (never a
// key or signature).
func callbackErr(status int, reason, msg string) error {
	return caddyhttp.Error(status, &callbackError{reason: reason, msg: msg})
}

// provisionCallback builds the verifier of the callback route, where
// verified callbacks go, and the handler's event records and queue in
// Caddy's storage.
func (h *Handler) provisionCallback(ctx caddy.Context) error {
	if h.CallbackPath == routeOff {
		return nil
	}
	h.ctx, h.srv = ctx, new(atomic.Pointer[caddyhttp.Server])
	h.callbackCanon = callback.CanonicalPath(h.CallbackPath)
	v, err := newCallbackVerifier(h.Callback.TrustedKeys, h.logger)
	if err != nil {
		return err
	}
	h.verifier = v
	if h.target, err = newForwardTarget(h.Callback, h.CallbackPath); err != nil {
		return err
	}
	inst, err := caddy.InstanceID()
	if err != nil {
		return fmt.Errorf("callback events: instance id: %w", err)
	}
	h.events, err = delivery.New(delivery.Config{
		Storage:  h.storage,
		Prefix:   eventsPrefix + "/" + h.id,
		Instance: inst.String(),
		Now:      h.now,
		Logger:   h.logger,
		Send:     h.sendQueued,
		RetryFor: time.Duration(h.Callback.RetryFor),
		Observe:  observeDelivery,
	})
	if err != nil {
		return err
	}
	liveQueues.Store(h.events, struct{}{})
	qctx, stop := context.WithCancel(ctx)
	h.stopQueue, h.queueDone = stop, make(chan struct{})
	go func() {
		defer close(h.queueDone)
		h.events.Run(qctx)
	}()
	return nil
}

// Cleanup stops the handler's queue (the next config's queue takes its
// records over) and releases the verifier's idle connections.
func (h *Handler) Cleanup() error {
	if h.stopQueue != nil {
		liveQueues.Delete(h.events)
		h.stopQueue()
		select {
		case <-h.queueDone:
		case <-time.After(queueStopWait):
			h.logger.Warn("the callback queue did not stop in time; its attempts in flight finish on their own")
		}
	}
	if h.verifier != nil {
		h.verifier.cleanup()
	}
	return nil
}

// serveRetry passes a retry of this handler's queue to next, rebuilt from
// its event. It reports false for a request that is not such a retry.
func (h *Handler) serveRetry(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (bool, error) {
	m, ok := r.Context().Value(retryMarkKey{}).(*retryMark)
	if !ok || h.events == nil || m.handler != h.id {
		return false, nil
	}
	m.reached.Store(true)
	h.target.rebuild(r, m.ev)
	return true, next.ServeHTTP(w, r)
}

// serveCallback verifies an OSS upload callback, records it as an upload
// event and, only if both succeed, hands the app a request rebuilt from
// what was verified (see forwardTarget.rebuild). The app's answer, or
// what the event's state says, goes back to OSS in OSS's contract.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The whole callback, key fetch, OSS and storage calls and the first
	// attempt, fits in answer_within from its arrival.
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(h.Callback.AnswerWithin))
	defer cancel()
	ev, facts, err := h.verifyCallback(ctx, r)
	if err != nil {
		return h.rejectCallback(r, err)
	}
	claim, err := h.events.Begin(ctx, ev, h.alsoExpires(ev)...)
	if err != nil {
		h.logger.Error("recording the callback failed", zap.Error(err), zap.String("object", ev.Object), zapRemote(r))
		err = callbackErr(http.StatusServiceUnavailable, reasonStorage, "callback records are unavailable")
		countCallback(err)
		return err
	}
	countCallback(nil)
	h.setPlaceholders(r, ev, facts)
	if !claim.Fresh {
		return h.answerCopy(w, r, claim)
	}
	// Settle or Release frees the event's locks; this only matters if the
	// attempt panics.
	defer h.events.Unhold(context.WithoutCancel(ctx), ev.ID)
	return h.firstAttempt(ctx, w, r, next, ev)
}

// verifyCallback checks everything about a callback and returns the event
// it reports, not yet recorded.
func (h *Handler) verifyCallback(ctx context.Context, r *http.Request) (*delivery.Event, map[string]string, error) {
	if r.Method != http.MethodPost {
		return nil, nil, callbackErr(http.StatusMethodNotAllowed, reasonMethod, "callbacks must be POST")
	}
	sigB64 := r.Header.Get("Authorization")
	keyURL := r.Header.Get("X-Oss-Pub-Key-Url")
	switch {
	case sigB64 == "":
		return nil, nil, callbackErr(http.StatusBadRequest, reasonHeaders, "missing Authorization header")
	case keyURL == "":
		return nil, nil, callbackErr(http.StatusBadRequest, reasonHeaders, "missing x-oss-pub-key-url header")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return nil, nil, callbackErr(http.StatusBadRequest, reasonHeaders, "Authorization is not valid base64")
	}
	maxBody := h.Callback.MaxBody
	if maxBody <= 0 {
		maxBody = defaultCallbackMaxBody
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		return nil, nil, err
	}
	if want := r.Header.Get("Content-MD5"); want != "" {
		sum := md5.Sum(body)
		if base64.StdEncoding.EncodeToString(sum[:]) != want {
			return nil, nil, callbackErr(http.StatusBadRequest, reasonBody, "Content-MD5 does not match the body")
		}
	}
	keys, err := h.verifier.keysFor(ctx, keyURL)
	if err != nil {
		return nil, nil, err
	}
	uri := originalRequestURI(r)
	msg, err := callback.StringToSign(uri, body)
	if err != nil {
		return nil, nil, callbackErr(http.StatusBadRequest, reasonSignature, "request path is not valid percent-encoding")
	}
	verified := false
	for _, k := range keys {
		if callback.VerifyMD5(k, msg, sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, nil, callbackErr(http.StatusForbidden, reasonSignature, callback.ErrBadSignature.Error())
	}
	if err := checkBodySeparators(body); err != nil {
		return nil, nil, err
	}
	ev := &delivery.Event{Body: body, Header: map[string]string{metaRemote: r.RemoteAddr, metaHost: r.Host}}
	if h.bodyTpl == nil {
		facts := callbackFacts(body)
		ev, err := h.unboundEvent(ev, facts)
		return ev, facts, err
	}
	// A bound callback was sent to the URL this handler issued: its path
	// and query are part of what OSS signed.
	if signedURI := string(msg[:len(msg)-len(body)-1]); signedURI != h.target.signed {
		return nil, nil, callbackErr(http.StatusForbidden, reasonURL, "callback was sent to another URL (path or query) than the one this handler issues")
	}
	bc, err := h.checkBound(ctx, r, body)
	if err != nil {
		return nil, nil, err
	}
	object := bc.vars["object"]
	etag := bc.vars["etag"]
	if etag == "" {
		etag = bc.etag
	}
	ev.ID = callback.EventID(h.id, h.Bucket, object, etag, bc.binding)
	ev.Object, ev.Expires = object, bc.expiry
	ev.Header["Content-Type"] = h.Callback.contentType()
	ev.Header[headerBucket] = h.Bucket
	return ev, bc.vars, nil
}

// unboundEvent names a callback accepted without a binding (verify_only)
// by the facts its body gives, or by the body itself.
func (h *Handler) unboundEvent(ev *delivery.Event, facts map[string]string) (*delivery.Event, error) {
	bucket := facts["bucket"]
	if h.Bucket != "" && bucket != "" && bucket != h.Bucket {
		return nil, callbackErr(http.StatusForbidden, reasonBucket, fmt.Sprintf("callback names bucket %q, not the configured one", bucket))
	}
	if facts["object"] != "" && facts["etag"] != "" {
		ev.ID = callback.EventID(h.id, bucket, facts["object"], facts["etag"], "")
	} else {
		sum := sha256.Sum256(ev.Body)
		ev.ID = callback.EventID(h.id, "", "", "", "body:"+hex.EncodeToString(sum[:]))
	}
	ev.Object = facts["object"]
	window := int64(unboundWindow / time.Second)
	ev.Expires = time.Unix((h.now().Unix()/window+2)*window, 0)
	ct := "application/x-www-form-urlencoded"
	if t := bytes.TrimSpace(ev.Body); len(t) > 0 && t[0] == '{' {
		ct = "application/json"
	}
	ev.Header["Content-Type"] = ct
	if bucket != "" {
		ev.Header[headerBucket] = bucket
	}
	return ev, nil
}

// alsoExpires lists the other expiries under which a copy of ev may have
// been recorded: for unbound callbacks, the previous window's.
func (h *Handler) alsoExpires(ev *delivery.Event) []time.Time {
	if h.bodyTpl != nil {
		return nil
	}
	return []time.Time{ev.Expires.Add(-unboundWindow)}
}

// checkBodySeparators refuses a form body with a raw ';': OSS encodes
// every value it substitutes, so only a forged or relayed body carries
// one, and older parsers (Python before 3.9.2, Rack, Django) split fields
// on it, reading a value the check never saw.
func checkBodySeparators(body []byte) error {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		return nil
	}
	if bytes.IndexByte(body, ';') >= 0 {
		return callbackErr(http.StatusForbidden, reasonBody, "callback form body has a raw ';', which some parsers read as a field separator")
	}
	return nil
}

// firstAttempt hands a fresh event to the app within what is left of OSS's
// wait, records the outcome, and answers OSS.
func (h *Handler) firstAttempt(ctx context.Context, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ev *delivery.Event) error {
	fwd := r.WithContext(ctx)
	h.target.rebuild(fwd, ev)
	if ce := h.logger.Check(zapcore.DebugLevel, "callback verified"); ce != nil {
		ce.Write(zap.String("id", ev.ID), zap.String("object", ev.Object), zapRemote(r))
	}
	ans := newAnswerRecorder()
	err := next.ServeHTTP(ans, fwd)
	status := ans.status
	var he caddyhttp.HandlerError
	switch {
	case errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500:
		status, err = he.StatusCode, nil // e.g. an auth layer after this handler
	case err == nil && status == 0 && ctx.Err() != nil:
		err = ctx.Err()
	case err == nil && status == 0:
		err = errors.New("the upstream gave no answer")
	}
	if err != nil {
		status = 0
	}
	answerStatus, answer := ans.normalized()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), settleTimeout)
	defer cancel()
	if h.Callback.Delivery == deliveryModeDirect && delivery.Classify(status, err) == delivery.Received {
		// Direct delivery keeps nothing owed: the uploader may send the
		// upload again.
		if rerr := h.events.Release(sctx, ev); rerr != nil {
			h.logger.Error("releasing a callback the app did not take failed", zap.String("id", ev.ID), zap.Error(rerr))
		}
		observeDelivery(deliveryFailed)
		h.logger.Warn("the upstream did not take the callback (delivery direct: not retried)",
			zap.String("id", ev.ID), zap.String("object", ev.Object), zap.Int("status", status), zap.Error(err))
		if status == 0 {
			return writeAnswer(w, http.StatusBadGateway, jsonError("the app did not take the callback"))
		}
		return writeAnswer(w, answerStatus, answer)
	}
	st, serr := h.events.Settle(sctx, ev, status, answer, err) // Settle logs a storage failure
	switch {
	case st == delivery.Delivered || st == delivery.Refused || (serr != nil && status != 0 && delivery.Classify(status, nil) != delivery.Received):
		if status != http.StatusOK && status < http.StatusBadRequest {
			h.logger.Warn("upstream answer breaks OSS's callback contract (200, JSON, within 5 s): it is sent as 200",
				zap.Int("status", status), zap.String("object", ev.Object))
		}
		return writeAnswer(w, answerStatus, answer)
	case st == delivery.Dead:
		return writeAnswer(w, http.StatusServiceUnavailable, jsonError("the callback could not be delivered to the app"))
	case serr != nil:
		// The app did not take it and it could not be queued: OSS tells
		// the uploader the callback failed.
		return writeAnswer(w, http.StatusServiceUnavailable, jsonError("callback records are unavailable"))
	}
	h.logger.Info("callback queued: the upstream did not take it in time",
		zap.String("id", ev.ID), zap.String("object", ev.Object), zap.Int("status", status), zap.Error(err))
	return writeAnswer(w, http.StatusOK, queuedAnswer(ev.ID))
}

// answerCopy answers a callback whose event is already recorded, by the
// event's state; the app is not called.
func (h *Handler) answerCopy(w http.ResponseWriter, r *http.Request, c delivery.Claim) error {
	log := h.logger.With(zap.String("id", c.Event.ID), zap.String("object", c.Event.Object), zap.String("state", string(c.State)), zapRemote(r))
	switch c.State {
	case delivery.Delivered:
		log.Info("copy of a delivered callback answered as duplicate, not forwarded")
		return writeAnswer(w, http.StatusOK, []byte(`{"status":"duplicate"}`))
	case delivery.Refused:
		log.Info("copy of a callback the app refused answered with the app's answer, not forwarded")
		rec := newAnswerRecorder()
		rec.status = c.Event.Status
		rec.body.Write(c.Event.Answer)
		return writeNormalized(w, rec)
	case delivery.Received:
		log.Info("copy of a queued callback answered as queued, not forwarded")
		return writeAnswer(w, http.StatusOK, queuedAnswer(c.Event.ID))
	}
	log.Warn("copy of a callback that was not delivered within retry_for")
	return writeAnswer(w, http.StatusServiceUnavailable, jsonError("the callback of this upload could not be delivered to the app"))
}

func queuedAnswer(id string) []byte {
	b, _ := json.Marshal(map[string]string{
		"status":          "queued",
		"message":         "the upload is stored and its callback will be delivered to the app",
		"idempotency_key": id,
	})
	return b
}

func jsonError(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return b
}

// setPlaceholders sets {http.oss_upload.callback.*} for logs and later
// handlers, from the callback's facts.
func (h *Handler) setPlaceholders(r *http.Request, ev *delivery.Event, facts map[string]string) {
	repl := replacer(r)
	repl.Set("http.oss_upload.callback.verified", true)
	repl.Set("http.oss_upload.callback.id", ev.ID)
	for _, k := range []string{"bucket", "object", "size", "etag"} {
		if v := facts[k]; v != "" {
			repl.Set("http.oss_upload.callback."+k, v)
		}
	}
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
// for checks, placeholders and logs. The body's own shape decides JSON or
// form: the Content-Type header is not signed.
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
