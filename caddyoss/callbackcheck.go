package caddyoss

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/redact"
)

// ossCallTimeout bounds a server-side OSS call made while OSS waits (5 s)
// for the callback's answer.
const (
	ossConnectTimeoutSec = 2
	ossReadTimeoutSec    = 3
)

// boundCallback is what checkBinding establishes of a callback or a
// confirm: the variables it was checked with, the object, the binding's
// expiry and own spelling, and what OSS stores (HeadObject's answer, and
// the ETag from it).
type boundCallback struct {
	vars    map[string]string
	object  string
	expiry  time.Time
	binding string
	etag    string
	stored  http.Header
}

// checkBound checks a verified callback against the binding it carries:
// the body has exactly the configured template's fields (or those it had
// before a reload turned the quota on or off), the binding is
// this handler's, unexpired, and covers the bucket, the object and every
// custom variable, and OSS confirms the object's facts.
func (cr *callbackRoute) checkBound(ctx context.Context, r *http.Request, body []byte) (boundCallback, error) {
	vars, err := cr.bodyTpl.parseBody(body)
	if err != nil && cr.quotaTpl != nil {
		if v, qerr := cr.quotaTpl.parseBody(body); qerr == nil {
			vars, err = v, nil
		}
	}
	if err != nil {
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBody, err.Error())
	}
	bc, err := cr.checkBinding(ctx, r, vars, viaCallback)
	bc.vars = vars
	return bc, err
}

// checkBinding checks the variables of a callback's body, or those a
// confirm (via) names (the object, the binding and the custom variables
// of its token): the binding is this handler's, unexpired, and covers the
// bucket, the object and every custom variable; the object lies in the
// handler's key_prefix and the binding's scope; OSS has it, with the
// size, etag and type the variables give (a confirm gives none), within
// the limits.
func (cr *callbackRoute) checkBinding(ctx context.Context, r *http.Request, vars map[string]string, via string) (boundCallback, error) {
	subject := via // "callback", "confirm"
	b, err := callback.Parse(vars["x:"+bindingVar])
	if err != nil {
		if via == viaConfirm {
			return boundCallback{}, callbackErr(http.StatusForbidden, reasonBinding, "confirm token is not valid: it was not issued by this site")
		}
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBinding, "callback carries no valid binding: it was not issued by this site (set verify_only to accept callbacks issued elsewhere)")
	}
	expiry := time.Unix(b.Expiry, 0)
	if !cr.now().Before(expiry) {
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBinding, subject+" binding has expired")
	}
	if v, ok := vars["bucket"]; ok && v != cr.Bucket {
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBucket, fmt.Sprintf("callback names bucket %q, not the configured one", v))
	}
	object := vars["object"]
	if object == "" || checkKeyPart(object) != nil || strings.HasSuffix(object, "/") {
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBinding, subject+" names no valid object")
	}
	// The object lies below one expansion of this handler's key_prefix,
	// and a prefix binding names exactly such an expansion.
	scope := b.Scope
	switch {
	case !cr.scope.Contains(object):
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBinding, subject+" object is outside this handler's key_prefix")
	case b.Kind == callback.ExactKey:
		scope = object
	case !cr.scope.FitsPrefix(scope) || !strings.HasPrefix(object, scope):
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBinding, subject+" object is outside the prefix its binding names")
	}
	custom := customVars(vars)
	key, err := cr.bindingKeys.ForHandler(ctx)
	if err != nil {
		cr.logger.Error("loading the callback binding key failed", zap.Error(err))
		return boundCallback{}, callbackErr(http.StatusServiceUnavailable, reasonStorage, "callback binding key unavailable")
	}
	if !hmac.Equal(b.MAC, callback.MAC(key, b.Kind, cr.Bucket, scope, b.Expiry, custom)) {
		return boundCallback{}, callbackErr(http.StatusForbidden, reasonBinding, subject+" binding does not match this handler, its bucket, object or variables")
	}
	// The body's facts are confirmed with OSS: a holder of STS credentials
	// writes the callback parameter itself, and anyone can make OSS (from
	// another account, another bucket) send a genuinely signed body that
	// copies a binding it was given, with facts of its choosing.
	stored, err := cr.confirmFacts(ctx, r, object, vars, via)
	if err != nil {
		return boundCallback{}, err
	}
	// What OSS stores, not what the body claims, is held to the limits,
	// which OSS does not enforce on STS uploads and presigned PUTs.
	if err := cr.enforceLimits(ctx, r, object, stored); err != nil {
		return boundCallback{}, err
	}
	return boundCallback{object: object, expiry: expiry, binding: b.String(), etag: strings.Trim(stored.Get("ETag"), `"`), stored: stored}, nil
}

// newOSSBucket builds the client for the callback route's OSS calls
// (HeadObject, and DeleteObject for uploads outside the limits), once, at
// provision.
func (h *Handler) newOSSBucket() (*oss.Bucket, error) {
	return h.newServerBucket(ossConnectTimeoutSec, ossReadTimeoutSec)
}

// confirmFacts asks OSS about the object a callback or confirm (via)
// names and refuses it when there is no such object (a callback 403, a
// confirm 404), or when the variables' size, etag or content type differ
// from what OSS stores. It returns OSS's answer (HeadObject's headers).
func (cr *callbackRoute) confirmFacts(ctx context.Context, r *http.Request, object string, vars map[string]string, via string) (http.Header, error) {
	if cr.ossBucket == nil {
		return nil, callbackErr(http.StatusForbidden, reasonConfirm, via+" cannot be confirmed: this instance has no OSS client")
	}
	hdr, err := cr.ossBucket.GetObjectDetailedMeta(object, oss.WithContext(ctx))
	if err != nil {
		var se oss.ServiceError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			if via == viaConfirm {
				return nil, callbackErr(http.StatusNotFound, reasonConfirm, "OSS has no such object: confirm after OSS answered the upload")
			}
			return nil, callbackErr(http.StatusForbidden, reasonConfirm, "callback names an object that OSS does not have")
		}
		code := ""
		if errors.As(err, &se) {
			code = se.Code
		}
		cr.logger.Error("confirming a "+via+" with OSS failed",
			zap.String("object", object), zap.String("oss_code", code), zap.String("error", redact.Error(err)), zapRemote(r))
		return nil, callbackErr(http.StatusBadGateway, reasonConfirm, "confirming the upload with OSS failed")
	}
	checks := []struct{ variable, stored string }{
		{"size", hdr.Get("Content-Length")},
		{"etag", strings.Trim(hdr.Get("ETag"), `"`)},
		{"mimeType", hdr.Get("Content-Type")},
	}
	for _, c := range checks {
		v, ok := vars[c.variable]
		if !ok {
			continue
		}
		same := v == c.stored
		if c.variable == "etag" {
			same = strings.EqualFold(v, c.stored)
		}
		if c.variable == "size" {
			a, err1 := strconv.ParseInt(v, 10, 64)
			b, err2 := strconv.ParseInt(c.stored, 10, 64)
			same = err1 == nil && err2 == nil && a == b
		}
		if !same {
			return nil, callbackErr(http.StatusForbidden, reasonConfirm, fmt.Sprintf("callback %s differs from what OSS stores", c.variable))
		}
	}
	return hdr, nil
}
