package caddyoss

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// What the app receives is rebuilt from what was verified, never relayed:
// POST to the configured callback URL's own path and query, the body OSS
// signed, and only these headers.
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerBucket         = "X-Oss-Bucket"
)

// forwardTarget is where verified callbacks go: the path, query and host of
// the configured callback URL (for verify_only without a URL, the callback
// path with no query). It is decided at provision.
type forwardTarget struct {
	uri  string // path and query as OSS sends them (RequestURI form)
	url  url.URL
	host string // "" keeps the request's Host
	// signed is the part of OSS's string to sign the target accounts for:
	// the decoded path, and the query with its '?'. A callback whose own
	// differs was sent to another URL than this handler issued.
	signed string
}

// newForwardTarget reads the configured callback URL (or, without one, the
// callback path).
func newForwardTarget(c *CallbackConfig, callbackPath string) (forwardTarget, error) {
	if c.URL == "" {
		return forwardTarget{uri: callbackPath, url: url.URL{Path: callbackPath}, signed: callbackPath}, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return forwardTarget{}, fmt.Errorf("callback url: %v", err)
	}
	t := forwardTarget{url: url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}, host: u.Host}
	if c.Host != "" {
		t.host = c.Host
	}
	t.uri = t.url.RequestURI()
	if u.ForceQuery && u.RawQuery == "" {
		t.uri += "?"
	}
	s, err := callback.StringToSign(t.uri, nil)
	if err != nil {
		return forwardTarget{}, fmt.Errorf("callback url: %v", err)
	}
	t.signed = string(s[:len(s)-1]) // without the newline
	return t, nil
}

// rebuild makes r the request the app receives for ev.
func (t *forwardTarget) rebuild(r *http.Request, ev *delivery.Event) {
	u := t.url
	r.Method = http.MethodPost
	r.URL = &u
	r.RequestURI = t.uri
	if t.host != "" {
		r.Host = t.host
	}
	h := make(http.Header, len(ev.Header)+4)
	for k, v := range ev.Header {
		if !strings.HasPrefix(k, ":") { // facts of the arrival, not headers
			h[k] = []string{v}
		}
	}
	h[verifiedHeader] = []string{"true"}
	h[headerIdempotencyKey] = []string{ev.ID}
	h["Content-Length"] = []string{strconv.Itoa(len(ev.Body))}
	r.Header = h
	r.Trailer, r.TransferEncoding, r.Form, r.PostForm, r.MultipartForm = nil, nil, nil, nil, nil
	body := ev.Body
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// retryMark is the context value of a retry the queue sends through the
// site's server: only the handler it names forwards it, and it says so. A
// client cannot set a context value.
type retryMark struct {
	handler string
	ev      *delivery.Event
	reached atomic.Bool
}

type retryMarkKey struct{}

// errNotReached is a retry that no longer finds its handler in the
// configuration: it stays queued.
var errNotReached = errors.New("the handler that queued this callback is not in the server's routes any more")

// sendQueued makes one attempt at a queued event: through the server and
// the route the handler sits in, so that the request passes the same
// handlers and upstream as the first attempt.
func (cr *callbackRoute) sendQueued(ctx context.Context, ev *delivery.Event) (int, []byte, error) {
	srv, err := cr.server()
	if err != nil {
		return 0, nil, err
	}
	mark := &retryMark{handler: cr.id, ev: ev}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, retryMarkKey{}, mark), http.MethodPost, cr.target.uri, nil)
	if err != nil {
		return 0, nil, err
	}
	cr.target.rebuild(req, ev)
	// Only the handler the mark names says the request is verified (it
	// rebuilds it again): on any other way through the server it is not.
	delete(req.Header, verifiedHeader)
	if cr.target.host == "" {
		req.Host = ev.Header[metaHost]
	}
	req.RemoteAddr = ev.Header[metaRemote]
	ans := newAnswerRecorder()
	srv.ServeHTTP(ans, req)
	if !mark.reached.Load() {
		return 0, nil, errNotReached
	}
	if ans.status == 0 {
		return 0, nil, errors.New("the upstream gave no answer")
	}
	_, body := ans.normalized()
	return ans.status, body, nil
}

// Facts of a callback's arrival kept with its event for the retries, under
// names that are not header names: the Host it came with (used when no
// callback URL names one) and the address it came from.
const (
	metaHost   = ":host"
	metaRemote = ":remote"
)

// server finds the server whose routes hold this handler, once.
func (cr *callbackRoute) server() (*caddyhttp.Server, error) {
	if s := cr.srv.Load(); s != nil {
		return s, nil
	}
	a, err := cr.ctx.AppIfConfigured("http")
	if err != nil {
		return nil, err
	}
	app, ok := a.(*caddyhttp.App)
	if !ok {
		return nil, errors.New("the http app is not caddyhttp.App")
	}
	for _, s := range app.Servers {
		if routesHold(s.Routes, cr.Handler) || (s.Errors != nil && routesHold(s.Errors.Routes, cr.Handler)) {
			cr.srv.Store(s)
			return s, nil
		}
	}
	return nil, errNotReached
}

// routesHold reports whether h is among the handlers of routes, subroutes
// included.
func routesHold(routes caddyhttp.RouteList, h *Handler) bool {
	for _, r := range routes {
		for _, mh := range r.Handlers {
			switch x := mh.(type) {
			case *Handler:
				if x == h {
					return true
				}
			case *caddyhttp.Subroute:
				if routesHold(x.Routes, h) || (x.Errors != nil && routesHold(x.Errors.Routes, h)) {
					return true
				}
			}
		}
	}
	return false
}

// Interface guard: the recorder is what the server writes a retry's answer to.
var _ http.ResponseWriter = (*answerRecorder)(nil)
