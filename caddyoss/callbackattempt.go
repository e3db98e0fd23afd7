package caddyoss

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// firstAttempt hands a fresh event to the app within what is left of OSS's
// wait, records the outcome, and answers OSS.
func (cr *callbackRoute) firstAttempt(ctx context.Context, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ev *delivery.Event) error {
	fwd := r.WithContext(ctx)
	cr.target.rebuild(fwd, ev)
	if ce := cr.logger.Check(zapcore.DebugLevel, "callback verified"); ce != nil {
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
	if cr.Callback.Delivery == deliveryModeDirect && delivery.Classify(status, err) == delivery.Received {
		// Direct delivery keeps nothing owed: the uploader may send the
		// upload again.
		if rerr := cr.events.Release(sctx, ev); rerr != nil {
			cr.logger.Error("releasing a callback the app did not take failed", zap.String("id", ev.ID), zap.Error(rerr))
		}
		observeDelivery(deliveryFailed)
		cr.logger.Warn("the upstream did not take the callback (delivery direct: not retried)",
			zap.String("id", ev.ID), zap.String("object", ev.Object), zap.Int("status", status), zap.Error(err))
		if status == 0 {
			return writeJSON(w, http.StatusBadGateway, jsonError("the app did not take the callback"))
		}
		return writeJSON(w, answerStatus, answer)
	}
	st, serr := cr.events.Settle(sctx, ev, status, answer, err) // Settle logs a storage failure
	switch {
	case st == delivery.Delivered || st == delivery.Refused || (serr != nil && status != 0 && delivery.Classify(status, nil) != delivery.Received):
		if status != http.StatusOK && status < http.StatusBadRequest {
			cr.logger.Warn("upstream answer breaks OSS's callback contract (200, JSON, within 5 s): it is sent as 200",
				zap.Int("status", status), zap.String("object", ev.Object))
		}
		return writeJSON(w, answerStatus, answer)
	case st == delivery.Dead:
		return writeJSON(w, http.StatusServiceUnavailable, jsonError("the callback could not be delivered to the app"))
	case serr != nil:
		// The app did not take it and it could not be queued: OSS tells
		// the uploader the callback failed.
		return writeJSON(w, http.StatusServiceUnavailable, jsonError("callback records are unavailable"))
	}
	cr.logger.Info("callback queued: the upstream did not take it in time",
		zap.String("id", ev.ID), zap.String("object", ev.Object), zap.Int("status", status), zap.Error(err))
	return writeJSON(w, http.StatusOK, queuedAnswer(ev.ID))
}

// answerCopy answers a callback or confirm (via) whose event is already
// recorded, by the event's state; the app is not called.
func (cr *callbackRoute) answerCopy(w http.ResponseWriter, r *http.Request, c delivery.Claim, via string) error {
	log := cr.logger.With(zap.String("id", c.Event.ID), zap.String("object", c.Event.Object), zap.String("state", string(c.State)),
		zap.String("via", via), zapRemote(r))
	switch c.State {
	case delivery.Delivered:
		log.Info("copy of a delivered callback answered as duplicate, not forwarded")
		return writeJSON(w, http.StatusOK, []byte(`{"status":"duplicate"}`))
	case delivery.Refused:
		log.Info("copy of a callback the app refused answered with the app's answer, not forwarded")
		rec := newAnswerRecorder()
		rec.status = c.Event.Status
		rec.body.Write(c.Event.Answer)
		return writeNormalized(w, rec)
	case delivery.Received:
		log.Info("copy of a queued callback answered as queued, not forwarded")
		return writeJSON(w, http.StatusOK, queuedAnswer(c.Event.ID))
	}
	log.Warn("copy of a callback that was not delivered within retry_for")
	return writeJSON(w, http.StatusServiceUnavailable, jsonError("the callback of this upload could not be delivered to the app"))
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
