package caddyoss

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// writeJSON writes v as a JSON response that no cache may store.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// renderError answers a route's error. When the server has handle_errors
// routes the error goes to them (with its message in {http.error.message});
// otherwise the client gets {"error": "<message>"} with the error's status.
func renderError(w http.ResponseWriter, r *http.Request, err error) error {
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) {
		he = caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok &&
		srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return he
	}
	msg := http.StatusText(he.StatusCode)
	if he.Err != nil {
		msg = he.Err.Error()
	}
	if he.StatusCode == 499 {
		return nil // the client is gone
	}
	if he.StatusCode == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
		w.Header().Set("Allow", "GET, HEAD")
	}
	return writeJSON(w, he.StatusCode, map[string]string{"error": msg})
}

// internalError logs what went wrong and returns a 500 that says no more
// than what the server was doing.
func (h *Handler) internalError(r *http.Request, doing string, err error) error {
	h.logger.Error(doing+" failed", zap.Error(err), zapRemote(r))
	return caddyhttp.Error(http.StatusInternalServerError, errors.New(doing+" failed"))
}

// unavailable logs a failure of shared state (storage) and returns a 503
// that says no more than what the server was doing.
func (h *Handler) unavailable(r *http.Request, doing string, err error) error {
	h.logger.Error(doing+" failed", zap.Error(err), zapRemote(r))
	return caddyhttp.Error(http.StatusServiceUnavailable, errors.New(doing+" failed; retry later"))
}

// forbidden answers a request the configuration cannot serve for this
// client, e.g. a per-user key prefix without a user.
func (h *Handler) forbidden(r *http.Request, err error) error {
	h.logger.Info("request refused", zap.Error(err), zapRemote(r))
	return caddyhttp.Error(http.StatusForbidden, err)
}

// logSigned writes the debug line of a signed upload. It is not inlined:
// its fields would otherwise take room on every request's stack.
//
//go:noinline
func (h *Handler) logSigned(ce *zapcore.CheckedEntry, r *http.Request, key string, expires time.Time) {
	ce.Write(zapKey(key), zapVersion(h.SignatureVersion), zapExpires(expires), zapRemote(r))
}

func zapKey(k string) zap.Field     { return zap.String("key", k) }
func zapVersion(v string) zap.Field { return zap.String("signature_version", v) }

// zapExpires logs a time as RFC 3339, whatever the log encoder does with
// times.
func zapExpires(t time.Time) zap.Field { return zap.String("expires", t.UTC().Format(time.RFC3339)) }

// zapRemote logs the client's IP as Caddy determined it (trusted proxies
// applied), without the port.
func zapRemote(r *http.Request) zap.Field { return zap.String("remote_ip", clientIP(r)) }

func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// replacer returns the request's Caddy replacer, or a fresh one outside a
// Caddy server (unit tests).
func replacer(r *http.Request) *caddy.Replacer {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		return repl
	}
	return caddy.NewReplacer()
}
