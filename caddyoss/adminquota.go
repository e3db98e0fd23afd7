package caddyoss

import (
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/quota"
)

// The quota routes of the admin API: what a key uses of a handler's quota,
// and forgiving its settled uploads. See docs/operations.md, "Quotas".
//
//	GET  /oss_upload/quota/<handler-id>?key=<quota key>        the key's usage
//	POST /oss_upload/quota/<handler-id>/reset?key=<quota key>  forgive its settled uploads

// quotaRoute is the admin API's folder of the quota routes, after
// adminBase.
const quotaRoute = "quota"

// adminUsage is a key's usage in the admin API's answers.
type adminUsage struct {
	Handler string `json:"handler"`
	Key     string `json:"key"`
	quota.Usage
	// Remaining is what the key may still use of each limit; -1 for a
	// limit that is not set.
	Remaining quota.Remaining `json:"remaining"`
	Window    string          `json:"window"`
	Reset     bool            `json:"reset,omitempty"`
}

// quotaLimits are a handler's quota in the handler listing.
type quotaLimits struct {
	quota.Limits
	Window string `json:"window"`
}

// serveQuota routes a request below adminBase+quotaRoute; parts are the
// path's parts after quotaRoute.
func (a *AdminAPI) serveQuota(w http.ResponseWriter, r *http.Request, parts []string) error {
	switch {
	case len(parts) == 1:
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.withLedger(w, r, parts[0], a.serveUsage)
	case len(parts) == 2 && parts[1] == "reset":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.withLedger(w, r, parts[0], a.serveReset)
	}
	return apiError(http.StatusNotFound, "no such oss_upload route: %s %s; the quota routes are %s%s/<handler-id>?key=… and …/reset?key=…",
		r.Method, r.URL.Path, adminBase, quotaRoute)
}

// withLedger finds the ledger of the handler id among the handlers of this
// process and the request's key, and runs f with them; 404 for a handler
// not served here or without a quota, 400 for a missing key.
func (a *AdminAPI) withLedger(w http.ResponseWriter, r *http.Request, id string,
	f func(http.ResponseWriter, *http.Request, string, *quota.Ledger, string) error) error {
	if !isHandlerID(id) {
		return apiError(http.StatusNotFound, "no oss_upload handler %.80q: a handler id is 32 hex digits (handler_id in its startup line)", id)
	}
	l := servedLedger(id)
	switch {
	case l == nil && servedQueue(id) != nil:
		return apiError(http.StatusNotFound, "oss_upload handler %s has no quota block", id)
	case l == nil:
		return apiError(http.StatusNotFound, "no oss_upload handler %s is configured here: quotas are read and reset at an instance that serves the handler", id)
	}
	key, err := quotaKeyParam(r)
	if err != nil {
		return err
	}
	return f(w, r, id, l, key)
}

// quotaKeyParam is the request's key parameter: the quota key, as the
// handler's quota key (or key_prefix) expands; present but empty for the
// empty key of a handler whose key_prefix is empty.
func quotaKeyParam(r *http.Request) (string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", apiError(http.StatusBadRequest, "the query does not parse: %v", err)
	}
	keys, ok := q["key"]
	switch {
	case !ok:
		return "", apiError(http.StatusBadRequest, "key is missing: name the quota key, as in ?key=alice "+
			"(?key= for a handler whose quota key is an empty key_prefix)")
	case len(keys) > 1:
		return "", apiError(http.StatusBadRequest, "key is given %d times: name one quota key", len(keys))
	}
	if err := checkExpanded(keys[0]); err != nil {
		return "", apiError(http.StatusBadRequest, "key %.80q can be no quota key: it %v", keys[0], err)
	}
	return keys[0], nil
}

func (a *AdminAPI) serveUsage(w http.ResponseWriter, r *http.Request, id string, l *quota.Ledger, key string) error {
	u, err := l.Usage(r.Context(), ledgerKey(key))
	if err != nil {
		return apiError(http.StatusServiceUnavailable, "reading the quota of key %q of handler %s: %v", key, id, err)
	}
	return writeAdminJSON(w, usageOf(id, key, l, u))
}

// serveReset forgives the key's settled uploads in the window; its live
// reservations stay until settled or expired.
func (a *AdminAPI) serveReset(w http.ResponseWriter, r *http.Request, id string, l *quota.Ledger, key string) error {
	u, err := l.Reset(r.Context(), ledgerKey(key))
	if err != nil {
		a.logger.Error("quota reset failed; it may still take effect", zap.String("handler_id", id), zap.String("key", key), zap.Error(err))
		return apiError(http.StatusServiceUnavailable, "resetting the quota of key %q of handler %s: %v; "+
			"a failed reset may still take effect: read the usage again", key, id, err)
	}
	a.logger.Info("quota reset", zap.String("handler_id", id), zap.String("key", key),
		zap.Int64("bytes", u.Bytes), zap.Int64("uploads", u.Uploads), zap.Int64("pending", u.Pending))
	out := usageOf(id, key, l, u)
	out.Reset = true
	return writeAdminJSON(w, out)
}

func usageOf(id, key string, l *quota.Ledger, u quota.Usage) adminUsage {
	return adminUsage{Handler: id, Key: key, Usage: u, Remaining: u.Remaining(), Window: l.Window().String()}
}

// servedLedger is the ledger of a handler of this process whose id is id,
// or nil. During a reload the old and the new handler both have one for a
// moment; either will do: both read and write the same records (the
// limits in the answer are the answering one's).
func servedLedger(id string) *quota.Ledger { return servedBy[*quota.Ledger](&liveLedgers, id) }

// servedQuota is the quota of the handler of this process whose id is id,
// or nil when it has none.
func servedQuota(id string) *quotaLimits {
	l := servedLedger(id)
	if l == nil {
		return nil
	}
	return &quotaLimits{Limits: l.Limits(), Window: l.Window().String()}
}
