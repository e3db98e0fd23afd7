package caddyoss

import (
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/sts"
)

// stsRetryAfter is what clients are told to wait when STS is unavailable.
const stsRetryAfter = "5"

// serveSTS answers GET <sts_path> with temporary credentials that may only
// upload below the (per-request) key prefix, in the field names of
// Alibaba's documented samples.
func (h *Handler) serveSTS(w http.ResponseWriter, r *http.Request) error {
	repl := replacer(r)
	prefix, err := h.keyPrefix(repl)
	if err != nil {
		return h.forbidden(r, err)
	}
	session := repl.ReplaceAll(h.STS.SessionName, "")
	if err := checkExpanded(session); err != nil {
		return h.forbidden(r, fmt.Errorf("sts session_name expands to a value that %v", err))
	}
	session = sanitizeSessionName(session)
	policy, err := sts.UploadPolicy(h.Bucket, prefix)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	c, err := h.sts.Get(r.Context(), session, policy)
	if err != nil {
		if errors.Is(err, sts.ErrUnavailable) {
			w.Header().Set("Retry-After", stsRetryAfter)
			return caddyhttp.Error(http.StatusServiceUnavailable,
				errors.New("temporary credentials are unavailable; retry later"))
		}
		if r.Context().Err() != nil {
			return caddyhttp.Error(499, r.Context().Err())
		}
		return h.internalError(r, "getting temporary credentials", err)
	}
	if ce := h.logger.Check(zapcore.DebugLevel, "STS credentials issued"); ce != nil {
		logIssued(ce, r, c, session, prefix)
	}
	// Without a callback or a confirm token the answer depends only on the
	// credentials and the prefix, which the cache key (the session policy) fixes, so the
	// first request to hand them out keeps it and the next ones send the
	// same bytes.
	if !h.issuesVars() {
		if body := c.Answer.Bytes(); body != nil {
			return writeJSON(w, http.StatusOK, body)
		}
	}
	var vars map[string]string
	if h.issuesVars() {
		custom, err := h.Callback.callbackVars(repl)
		if err != nil {
			return h.forbidden(r, err)
		}
		// STS signs no size: the credentials reserve max_size for their
		// lifetime, and are refused when less is left.
		if err := h.reserveQuota(w, r, &custom, prefix, h.MaxSize, c.Expiration, signRouteSTS); err != nil {
			return err
		}
		if vars, err = h.issueVars(r.Context(), custom, callback.STS, prefix, c.Expiration); err != nil {
			return h.unavailable(r, "signing the callback binding", err)
		}
	}
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	o := jsonw.Object{B: *bp}
	o.Open()
	o.Str("AccessKeyId", c.ID)
	o.Str("AccessKeySecret", c.Secret)
	o.Str("SecurityToken", c.Token)
	o.Key("Expiration")
	o.B = append(o.B, '"')
	o.B = osssign.AppendUTCRFC3339(o.B, c.Expiration)
	o.B = append(o.B, '"')
	o.Str("Bucket", h.Bucket)
	o.Str("Region", h.Region)
	o.Str("Endpoint", h.uploadURL)
	o.Str("Prefix", prefix)
	if h.callbackB64 != "" {
		if err := h.Callback.appendSTSCallback(&o, h.callbackB64, vars); err != nil {
			return h.internalError(r, "encoding callback variables", err)
		}
	}
	h.appendConfirm(&o, "Confirm", h.confirmToken(vars))
	o.Close()
	*bp = o.B
	if !h.issuesVars() {
		c.Answer.Keep(o.B)
	}
	return writeJSON(w, http.StatusOK, o.B) // Cache-Control: no-store
}

// sanitizeSessionName maps a session name onto what STS accepts: 2–64
// characters of [A-Za-z0-9.@_-].
func sanitizeSessionName(s string) string {
	if validSessionName(s) {
		return s
	}
	b := []byte(s)
	out := b[:0]
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '@', c == '_', c == '-':
			out = append(out, c)
		default:
			out = append(out, '_')
		}
	}
	s = string(out)
	if len(s) > 64 {
		s = s[:64]
	}
	for len(s) < 2 {
		s += "_"
	}
	return s
}

// validSessionName reports whether s is already what STS accepts.
func validSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '@', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// logIssued writes the debug line of an STS answer. It is not inlined: its
// fields would otherwise take room on every request's stack.
//
//go:noinline
func logIssued(ce *zapcore.CheckedEntry, r *http.Request, c sts.Issued, session, prefix string) {
	ce.Write(zap.String("source", c.Source), zap.String("session_name", session), zap.String("prefix", prefix),
		zapExpires(c.Expiration), zapRemote(r))
}
