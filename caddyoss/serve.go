package caddyoss

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Every answer of the plugin's own goes out through writeBody: signing
// answers, error answers and the callback answer to OSS.

// contentLengths holds the Content-Length strings of the answer sizes
// seen so far (below maxSharedLength). Strings cannot be changed, so they
// may be shared; the slices that carry them in a header may not.
var contentLengths sync.Map // int → string

const maxSharedLength = 8 << 10

// contentLength is the Content-Length header value for n bytes.
func contentLength(n int) string {
	if n >= maxSharedLength {
		return strconv.Itoa(n)
	}
	if v, ok := contentLengths.Load(n); ok {
		return v.(string)
	}
	v, _ := contentLengths.LoadOrStore(n, strconv.Itoa(n))
	return v.(string)
}

// setAnswerHeaders sets Content-Type, Cache-Control (unless a handler
// before this one set it) and Content-Length. The value slices are this
// answer's own: a handler wrapping this one may write into them in place
// (Caddy's header directive does, for deferred replacements). They share
// one backing array, each capped at its one element, so that appending to
// one cannot reach the next.
func setAnswerHeaders(h http.Header, contentType string, n int) {
	v := make([]string, 3)
	v[0], v[1], v[2] = contentType, "no-store", contentLength(n)
	h["Content-Type"] = v[0:1:1]
	if len(h["Cache-Control"]) == 0 {
		h["Cache-Control"] = v[1:2:2]
	}
	h["Content-Length"] = v[2:3:3]
	delete(h, "Transfer-Encoding")
}

// writeBody answers with body, which no cache may store.
func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) error {
	setAnswerHeaders(w.Header(), contentType, len(body))
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, body []byte) error {
	return writeBody(w, status, "application/json", body)
}

// writeObject answers with the JSON object whose members fill writes,
// built in a pooled buffer.
func writeObject(w http.ResponseWriter, status int, fill func(o *jsonw.Object)) error {
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	o := jsonw.Object{B: *bp}
	o.Open()
	fill(&o)
	o.Close()
	*bp = o.B
	return writeJSON(w, status, o.B)
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
	var qr *quotaRefusal
	errors.As(he.Err, &qr)
	return writeObject(w, he.StatusCode, func(o *jsonw.Object) {
		o.Str("error", msg)
		if qr != nil {
			qr.appendTo(o)
		}
	})
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

// ServeHTTP answers the signing, callback and confirm routes and passes every other
// request to the next handler untouched.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.callback != nil {
		if retry, err := h.callback.serveRetry(w, r, next); retry {
			return err
		}
	}
	stripVerifiedHeader(r.Header)
	switch p := r.URL.Path; {
	case h.uppy != nil && strings.HasPrefix(p, h.uppy.prefix):
		return h.serveUppyRoute(w, r, p[len(h.uppy.prefix):])
	case p == h.PolicyPath:
		return h.serveSigning(w, r, h.servePostPolicy, signRoutePostPolicy)
	case p == h.PresignPath:
		return h.serveSigning(w, r, h.servePresign, signRoutePresign)
	case p == h.STSPath:
		return h.serveSigning(w, r, h.serveSTS, signRouteSTS)
	case p == h.ConfirmPath && h.callback != nil:
		return h.serveDelivering(w, r, next, h.callback.serveConfirm)
	case h.isCallbackRequest(r):
		return h.serveDelivering(w, r, next, h.callback.serveCallback)
	default:
		return next.ServeHTTP(w, r)
	}
}

// serveSigning runs one of the GET signing routes, counts it under name
// and renders its error. The routes are separate functions, each with only
// its own locals on the stack: a request's stack then stays within the
// size the connection's goroutine already has.
func (h *Handler) serveSigning(w http.ResponseWriter, r *http.Request, route func(http.ResponseWriter, *http.Request) error, name string) error {
	start := time.Now()
	var err error
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		err = methodNotAllowed(w, r)
	} else {
		err = route(w, r)
	}
	observeSign(name, start, err)
	if err != nil {
		return renderError(w, r, err)
	}
	return nil
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Allow", "GET, HEAD")
	return caddyhttp.Error(http.StatusMethodNotAllowed,
		fmt.Errorf("method %s is not allowed; use GET", r.Method))
}

func (h *Handler) serveUppyRoute(w http.ResponseWriter, r *http.Request, rest string) error {
	start := time.Now()
	err := h.uppy.serve(w, r, rest)
	observeSign(signRouteUppy, start, err)
	if err != nil {
		return renderError(w, r, err)
	}
	return nil
}

// serveDelivering runs the callback or the confirm route (route), which
// may hand the upload to next, and renders its error when it did not.
func (h *Handler) serveDelivering(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler,
	route func(http.ResponseWriter, *http.Request, caddyhttp.Handler) error) error {
	var nextCalled bool
	err := route(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		nextCalled = true
		return next.ServeHTTP(w, r)
	}))
	if err != nil && !nextCalled {
		return renderError(w, r, err)
	}
	return err
}

// signingEnabled reports whether any signing route is on.
func (h *Handler) signingEnabled() bool {
	// An unset uppy_path (before Provision) follows policy_path.
	uppy := h.UppyPath != routeOff && (h.UppyPath != "" || h.PolicyPath != routeOff)
	return h.PolicyPath != routeOff || h.PresignPath != routeOff || h.STSPath != routeOff || uppy
}

// credentialsUnavailable answers a signing request when the credential
// chain, which worked at startup, fails now (an expired role, a removed
// credentials file): 503 with Retry-After, since the chain may recover.
func (h *Handler) credentialsUnavailable(w http.ResponseWriter, r *http.Request, err error) error {
	h.logger.Error("getting signing credentials failed", zap.Error(err), zapRemote(r))
	w.Header().Set("Retry-After", credentialsRetryAfter)
	return caddyhttp.Error(http.StatusServiceUnavailable,
		errors.New("signing credentials are unavailable; retry later"))
}
