package caddyoss

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// adminBase is the admin endpoint's path of the oss_upload routes.
const adminBase = "/oss_upload/"

// AdminAPI serves the callback events of the oss_upload handlers at the
// admin endpoint (module admin.api.oss_upload), for operators: the pending
// and dead events of each handler, one event in any state, and redelivering
// or dropping dead events; and what a key uses of a handler's quota, and
// resetting it (adminquota.go). Caddy loads it with the admin endpoint; it
// has no configuration, and the admin endpoint's own access controls (its
// listen address, origins and enforce_origin, remote admin's access
// control) guard it. See docs/operations.md, "Dead letters" and "Quotas".
//
//	GET    /oss_upload/                                    handlers with events, their counts and quotas
//	GET    /oss_upload/<handler-id>                        one handler's counts
//	GET    /oss_upload/<handler-id>/events[?state=pending|dead]
//	GET    /oss_upload/<handler-id>/events/<id>            one event, any state
//	POST   /oss_upload/<handler-id>/events/<id>/redeliver  a dead event, back in the queue
//	POST   /oss_upload/<handler-id>/dead/redeliver         every dead event
//	DELETE /oss_upload/<handler-id>/events/<id>            a dead event, for good
//	GET    /oss_upload/quota/<handler-id>?key=<quota key>  a key's usage of the handler's quota
//	POST   /oss_upload/quota/<handler-id>/reset?key=…      its settled uploads, forgiven
type AdminAPI struct {
	storage certmagic.Storage // Caddy's storage, where handlers not served here keep their records
	logger  *zap.Logger
	now     func() time.Time
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.oss_upload",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision takes the config's storage, the one its handlers record their
// events in.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.storage = ctx.Storage()
	// An admin router is provisioned outside any module: name it, as
	// Caddy's own admin routers do.
	a.logger = ctx.Logger(a)
	if a.now == nil {
		a.now = time.Now
	}
	return nil
}

// Routes returns the oss_upload routes of the admin endpoint.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminBase, Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// serve routes a request below adminBase.
func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, adminBase), "/")
	var parts []string
	if rest != "" {
		parts = strings.Split(rest, "/")
	}
	switch {
	case len(parts) > 0 && parts[0] == quotaRoute:
		return a.serveQuota(w, r, parts[1:])
	case len(parts) == 0:
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.serveIndex(w, r)
	case len(parts) == 1:
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.withHandler(w, r, parts[0], a.serveHandler)
	case len(parts) == 2 && parts[1] == "events":
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.withHandler(w, r, parts[0], a.serveEvents)
	case len(parts) == 3 && parts[1] == "dead" && parts[2] == "redeliver":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.withHandler(w, r, parts[0], a.serveRedeliverDead)
	case len(parts) == 3 && parts[1] == "events":
		if err := allow(w, r, http.MethodGet, http.MethodDelete); err != nil {
			return err
		}
		id := parts[2]
		return a.withHandler(w, r, parts[0], func(w http.ResponseWriter, r *http.Request, h adminHandler) error {
			if r.Method == http.MethodDelete {
				return a.serveDrop(w, r, h, id)
			}
			return a.serveEvent(w, r, h, id)
		})
	case len(parts) == 4 && parts[1] == "events" && parts[3] == "redeliver":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		id := parts[2]
		return a.withHandler(w, r, parts[0], func(w http.ResponseWriter, r *http.Request, h adminHandler) error {
			return a.serveRedeliver(w, r, h, id)
		})
	}
	return apiError(http.StatusNotFound, "no such oss_upload route: %s %s; see GET %s", r.Method, r.URL.Path, adminBase)
}

// allow refuses a method other than methods with 405 and an Allow header.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) error {
	if slices.Contains(methods, r.Method) {
		return nil
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return apiError(http.StatusMethodNotAllowed, "method %s is not allowed on %s; use %s",
		r.Method, r.URL.Path, strings.Join(methods, " or "))
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// adminHandler is one handler's records, as the admin API reaches them.
type adminHandler struct {
	id     string
	queue  *delivery.Queue // the running queue when served here, else one opened on the storage
	served bool            // an oss_upload handler of this process serves it
}

// withHandler finds the handler id and runs f with it: a handler served
// by this process (its running queue), else one with records in Caddy's
// storage (a queue opened for operators); otherwise 404.
func (a *AdminAPI) withHandler(w http.ResponseWriter, r *http.Request, id string,
	f func(http.ResponseWriter, *http.Request, adminHandler) error) error {
	if !isHandlerID(id) {
		return apiError(http.StatusNotFound, "no oss_upload handler %.80q: a handler id is 32 hex digits (handler_id in its startup line)", id)
	}
	if q := servedQueue(id); q != nil {
		return f(w, r, adminHandler{id: id, queue: q, served: true})
	}
	if a.storage != nil {
		prefix := eventsPrefix + "/" + id
		keys, err := a.storage.List(r.Context(), prefix, false)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return apiError(http.StatusInternalServerError, "reading the events of handler %s: %v", id, err)
		}
		if len(keys) > 0 {
			q, err := delivery.Open(delivery.Config{Storage: a.storage, Prefix: prefix, Now: a.now, Logger: a.logger,
				Observe: observeDelivery})
			if err != nil {
				return apiError(http.StatusInternalServerError, "%v", err)
			}
			return f(w, r, adminHandler{id: id, queue: q})
		}
	}
	return apiError(http.StatusNotFound, "no oss_upload handler %s: none with a callback route is configured here, and none has events in storage", id)
}

// servedQueue is the running queue of a handler of this process whose id
// is id, or nil. During a reload the old and the new handler both serve
// it for a moment; either will do, both read the same records.
func servedQueue(id string) *delivery.Queue { return servedBy[*delivery.Queue](&liveQueues, id) }

// servedBy is the first key of live (a registry of this process's
// handlers' queues or ledgers, valued by handler id) whose handler id is
// id, or nil.
func servedBy[T any](live *sync.Map, id string) T {
	var found T
	live.Range(func(k, hid any) bool {
		if hid == id {
			found = k.(T)
			return false
		}
		return true
	})
	return found
}

// servedHandlerIDs are the ids of the handlers of this process with a
// callback route, once each.
func servedHandlerIDs() []string {
	var ids []string
	seen := map[string]bool{}
	liveQueues.Range(func(_, hid any) bool {
		if id := hid.(string); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
		return true
	})
	return ids
}

// isHandlerID reports whether s can be a callback.HandlerID.
func isHandlerID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Interface guards.
var (
	_ caddy.Module      = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
