package caddyoss

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

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

// callbackError is why a callback was rejected: a reason code for metrics
// and a message for the log and the answer.
type callbackError struct {
	reason string
	msg    string
}

func (e *callbackError) Error() string { return e.msg }

// callbackRoute answers the callback route and the confirm route of one
// handler, whose configuration it reads: it owns the verifier of OSS's
// signatures, where verified uploads go, and the handler's event records
// and queue in Caddy's storage. Both routes end in accept.
type callbackRoute struct {
	*Handler
	ctx       caddy.Context
	verifier  *callbackVerifier
	target    forwardTarget
	events    *delivery.Queue
	stopQueue context.CancelFunc
	queueDone chan struct{}
	srv       *atomic.Pointer[caddyhttp.Server] // found on the first retry
	emitter   *uploadEvents                     // Caddy events of the uploads; nil without an events app
}

// provisionCallback builds the callback route, unless both callback_path
// and confirm_path are off, and starts its queue.
func (h *Handler) provisionCallback(ctx caddy.Context) error {
	if !h.delivers() {
		return nil
	}
	if h.CallbackPath != routeOff {
		h.callbackCanon = callback.CanonicalPath(h.CallbackPath)
	}
	cr := &callbackRoute{Handler: h, ctx: ctx, srv: new(atomic.Pointer[caddyhttp.Server])}
	v, err := newCallbackVerifier(h.Callback.TrustedKeys, h.logger)
	if err != nil {
		return err
	}
	cr.verifier = v
	if cr.target, err = newForwardTarget(h.Callback, h.CallbackPath); err != nil {
		return err
	}
	inst, err := caddy.InstanceID()
	if err != nil {
		return fmt.Errorf("callback events: instance id: %w", err)
	}
	cr.emitter = newUploadEvents(ctx, h.logger)
	cr.events, err = delivery.New(delivery.Config{
		Storage:  h.storage,
		Prefix:   eventsPrefix + "/" + h.id,
		Instance: inst.String(),
		Now:      h.now,
		Logger:   h.logger,
		Send:     cr.sendQueued,
		RetryFor: time.Duration(h.Callback.RetryFor),
		Observe:  observeDelivery,
		OnSettle: cr.emitter.settled,
	})
	if err != nil {
		return err
	}
	h.callback = cr
	liveQueues.Store(cr.events, h.id)
	qctx, stop := context.WithCancel(ctx)
	cr.stopQueue, cr.queueDone = stop, make(chan struct{})
	go func() {
		defer close(cr.queueDone)
		cr.events.Run(qctx)
	}()
	return nil
}

// cleanup stops the route's queue (the next config's queue takes its
// records over) and emitter, and releases the verifier's idle connections.
func (cr *callbackRoute) cleanup() {
	if cr.stopQueue != nil {
		liveQueues.Delete(cr.events)
		cr.stopQueue()
		select {
		case <-cr.queueDone:
		case <-time.After(queueStopWait):
			cr.logger.Warn("the callback queue did not stop in time; its attempts in flight finish on their own")
		}
	}
	cr.emitter.stop()
	cr.verifier.cleanup()
}

// serveRetry passes a retry of this handler's queue to next, rebuilt from
// its event. It reports false for a request that is not such a retry.
func (cr *callbackRoute) serveRetry(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (bool, error) {
	m, ok := r.Context().Value(retryMarkKey{}).(*retryMark)
	if !ok || cr.events == nil || m.handler != cr.id {
		return false, nil
	}
	m.reached.Store(true)
	cr.target.rebuild(r, m.ev)
	return true, next.ServeHTTP(w, r)
}

// serveCallback verifies an OSS upload callback, records it as an upload
// event and, only if both succeed, hands the app a request rebuilt from
// what was verified (see forwardTarget.rebuild). The app's answer, or
// what the event's state says, goes back to OSS in OSS's contract.
func (cr *callbackRoute) serveCallback(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The whole callback, key fetch, OSS and storage calls and the first
	// attempt, fits in answer_within from its arrival.
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(cr.Callback.AnswerWithin))
	defer cancel()
	ev, facts, err := cr.verifyCallback(ctx, r)
	if err != nil {
		return cr.rejectCallback(r, err)
	}
	return cr.accept(ctx, w, r, next, ev, facts, viaCallback)
}

// accept records a verified upload as its event and, when the event is
// fresh, hands it to the app (firstAttempt); a copy is answered by its
// event's state. It is where the callback and the confirm route meet:
// one event id per upload, whichever route came first, so the app hears
// of an upload once. via ("callback", "confirm") names the route for
// metrics, events and logs. An error it returns was not answered yet.
func (cr *callbackRoute) accept(ctx context.Context, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ev *delivery.Event, facts map[string]string, via string) error {
	claim, err := cr.events.Begin(ctx, ev, cr.alsoExpires(ev)...)
	if err != nil {
		what := "callback"
		if via == viaConfirm {
			what = "confirmed upload"
		}
		cr.logger.Error("recording the "+what+" failed", zap.Error(err), zap.String("object", ev.Object), zapRemote(r))
		err = callbackErr(http.StatusServiceUnavailable, reasonStorage, what+" records are unavailable")
		countVia(via, err)
		if via == viaCallback {
			cr.emitter.rejected(r, err)
		}
		return err
	}
	if claim.Fresh {
		if err := cr.settleQuota(ctx, r, ev, facts, via); err != nil {
			countVia(via, err)
			if via == viaCallback {
				cr.emitter.rejected(r, err)
			}
			return err
		}
	}
	countVia(via, nil)
	cr.setPlaceholders(r, ev, facts)
	if !claim.Fresh {
		return cr.answerCopy(w, r, claim, via)
	}
	cr.emitter.verified(ev, facts, via)
	// Settle or Release frees the event's locks; this only matters if the
	// attempt panics.
	defer cr.events.Unhold(context.WithoutCancel(ctx), ev.ID)
	return cr.firstAttempt(ctx, w, r, next, ev)
}

// setPlaceholders sets {http.oss_upload.callback.*} for logs and later
// handlers, from the callback's facts.
func (cr *callbackRoute) setPlaceholders(r *http.Request, ev *delivery.Event, facts map[string]string) {
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
func (cr *callbackRoute) rejectCallback(r *http.Request, err error) error {
	cr.logger.Warn("callback rejected", zap.Error(err), zapRemote(r))
	countCallback(err)
	cr.emitter.rejected(r, err)
	return err
}

// Interface guard.
var _ caddy.CleanerUpper = (*Handler)(nil)
