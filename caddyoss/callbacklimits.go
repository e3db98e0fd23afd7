package caddyoss

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/redact"
)

// limitDeleteTimeout bounds the deletion of an upload outside the limits.
// It runs even when OSS has stopped waiting for the callback's answer.
const limitDeleteTimeout = 4 * time.Second

// limitViolation says how an object as OSS stores it breaks max_size,
// min_size or allow_types, with the status the callback is refused with
// (OSS reports it to the uploader as "Error status : <status>"); "" and 0
// when it is within them.
func (h *Handler) limitViolation(size int64, contentType string) (string, int) {
	switch {
	case h.MaxSize > 0 && size > h.MaxSize:
		return fmt.Sprintf("size %d exceeds max_size %d", size, h.MaxSize), http.StatusRequestEntityTooLarge
	case size < h.MinSize:
		return fmt.Sprintf("size %d is below min_size %d", size, h.MinSize), http.StatusBadRequest
	case len(h.AllowTypes) > 0 && !typeAllowed(h.AllowTypes, contentType):
		return fmt.Sprintf("type %q is not in allow_types (%s)", contentType, strings.Join(h.AllowTypes, ", ")), http.StatusUnsupportedMediaType
	}
	return "", 0
}

// enforceLimits holds the object a bound, confirmed callback names to
// max_size, min_size and allow_types, as OSS stores it (stored is
// HeadObject's answer): OSS enforces none of them on STS uploads and the
// size on no presigned PUT. An object outside them is deleted and the
// callback refused, so that OSS reports CallbackFailed (203) to the
// uploader and the app never hears of it.
func (cr *callbackRoute) enforceLimits(ctx context.Context, r *http.Request, object string, stored http.Header) error {
	if cr.MaxSize == 0 && cr.MinSize == 0 && len(cr.AllowTypes) == 0 {
		return nil
	}
	size, err := strconv.ParseInt(stored.Get("Content-Length"), 10, 64)
	if err != nil || size < 0 {
		cr.logger.Error("OSS told no size of a callback's object", zap.String("object", object), zapRemote(r))
		return callbackErr(http.StatusBadGateway, reasonConfirm, "confirming the upload with OSS failed: no object size")
	}
	contentType := stored.Get("Content-Type")
	why, status := cr.limitViolation(size, contentType)
	if why == "" {
		return nil
	}
	return cr.deleteRefused(ctx, r, object, "upload outside the limits", why, status, reasonLimits,
		zap.Int64("size", size), zap.String("type", contentType))
}

// deleteRefused deletes the object of a refused upload (what: "upload
// outside the limits", "upload over the quota"; why: the detail) and
// returns the refusal, with status and reason, saying whether the object
// is gone. It logs the outcome with fields. The deletion runs even when
// OSS has stopped waiting for the callback's answer.
func (cr *callbackRoute) deleteRefused(ctx context.Context, r *http.Request, object, what, why string, status int, reason string, fields ...zap.Field) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limitDeleteTimeout)
	defer cancel()
	if err := cr.ossBucket.DeleteObject(object, oss.WithContext(dctx)); err != nil {
		code := ""
		var se oss.ServiceError
		if errors.As(err, &se) {
			code = se.Code
		}
		cr.logger.Error("deleting an "+what+" failed: it stays stored",
			zap.String("object", object), zap.String("why", why), zap.String("oss_code", code), zap.String("error", redact.Error(err)), zapRemote(r))
		return callbackErr(status, reason, what+" ("+why+"); deleting it failed")
	}
	cr.logger.Warn(what+" deleted", append([]zap.Field{zap.String("object", object), zap.String("why", why), zapRemote(r)}, fields...)...)
	return callbackErr(status, reason, what+" ("+why+"); it was deleted")
}
