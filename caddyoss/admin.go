package caddyoss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
// or dropping dead events. Caddy loads it with the admin endpoint; it has
// no configuration, and the admin endpoint's own access controls (its
// listen address, origins and enforce_origin, remote admin's access
// control) guard it. See docs/operations.md, "Dead letters".
//
//	GET    /oss_upload/                                    handlers with events, and their counts
//	GET    /oss_upload/<handler-id>                        one handler's counts
//	GET    /oss_upload/<handler-id>/events[?state=pending|dead]
//	GET    /oss_upload/<handler-id>/events/<id>            one event, any state
//	POST   /oss_upload/<handler-id>/events/<id>/redeliver  a dead event, back in the queue
//	POST   /oss_upload/<handler-id>/dead/redeliver         every dead event
//	DELETE /oss_upload/<handler-id>/events/<id>            a dead event, for good
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
func servedQueue(id string) *delivery.Queue {
	var found *delivery.Queue
	liveQueues.Range(func(q, hid any) bool {
		if hid == id {
			found = q.(*delivery.Queue)
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

// handlerSummary is a handler in the admin API's answers.
type handlerSummary struct {
	ID string `json:"id"`
	// Served: an oss_upload handler of this process has this id (its
	// queue delivers redelivered events at once).
	Served  bool `json:"served"`
	Pending int  `json:"pending"`
	Dead    int  `json:"dead"`
}

func summarize(ctx context.Context, h adminHandler) (handlerSummary, error) {
	s := handlerSummary{ID: h.id, Served: h.served}
	var err error
	if s.Pending, err = h.queue.CountPending(ctx); err != nil {
		return s, err
	}
	s.Dead, err = h.queue.CountDead(ctx)
	return s, err
}

// serveIndex lists the handlers served here and those with records in
// storage, with their counts.
func (a *AdminAPI) serveIndex(w http.ResponseWriter, r *http.Request) error {
	ids := servedHandlerIDs()
	if a.storage != nil {
		keys, err := a.storage.List(r.Context(), eventsPrefix, false)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return apiError(http.StatusInternalServerError, "listing the handlers with events: %v", err)
		}
		for _, k := range keys {
			if id := path.Base(k); isHandlerID(id) && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	out := struct {
		Handlers []handlerSummary `json:"handlers"`
	}{Handlers: []handlerSummary{}}
	for _, id := range ids {
		err := a.withHandler(w, r, id, func(w http.ResponseWriter, r *http.Request, h adminHandler) error {
			s, err := summarize(r.Context(), h)
			if err != nil {
				return apiError(http.StatusInternalServerError, "counting the events of handler %s: %v", id, err)
			}
			out.Handlers = append(out.Handlers, s)
			return nil
		})
		var ae caddy.APIError
		if errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound {
			continue // its records went meanwhile
		}
		if err != nil {
			return err
		}
	}
	return writeAdminJSON(w, out)
}

func (a *AdminAPI) serveHandler(w http.ResponseWriter, r *http.Request, h adminHandler) error {
	s, err := summarize(r.Context(), h)
	if err != nil {
		return apiError(http.StatusInternalServerError, "counting the events of handler %s: %v", h.id, err)
	}
	return writeAdminJSON(w, s)
}

// adminEvent is an event in the admin API's answers. The full form (one
// event) adds what was delivered or kept.
type adminEvent struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	Object      string     `json:"object"`
	Attempts    int        `json:"attempts"`
	Status      int        `json:"status,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Created     time.Time  `json:"created"`
	Age         string     `json:"age"`
	NextAt      *time.Time `json:"next_at,omitempty"`
	Redelivered *time.Time `json:"redelivered,omitempty"`

	Expires    *time.Time        `json:"expires,omitempty"`
	Header     map[string]string `json:"header,omitempty"`
	Body       *string           `json:"body,omitempty"`
	BodyBase64 []byte            `json:"body_base64,omitempty"`
	Answer     *string           `json:"answer,omitempty"`
	LeaseUntil *time.Time        `json:"lease_until,omitempty"`
	LeaseOwner string            `json:"lease_owner,omitempty"`
}

// stateName is how the admin API names a state: "pending" for an event
// still owed (delivery.Received), as its records' folder is named.
func stateName(s delivery.State) string {
	if s == delivery.Received {
		return "pending"
	}
	return string(s)
}

func (a *AdminAPI) eventOf(ev *delivery.Event, full bool) adminEvent {
	e := adminEvent{
		ID: ev.ID, State: stateName(ev.State), Object: ev.Object, Attempts: ev.Attempts,
		Status: ev.Status, LastError: ev.LastError, Created: ev.Created,
		Age: a.now().Sub(ev.Created).Round(time.Second).String(),
	}
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	if ev.State == delivery.Received {
		e.NextAt = opt(ev.NextAt)
	}
	e.Redelivered = opt(ev.Redelivered)
	if !full {
		return e
	}
	e.Expires = opt(ev.Expires)
	for k, v := range ev.Header {
		if !strings.HasPrefix(k, ":") { // facts of the callback's arrival, not headers
			if e.Header == nil {
				e.Header = map[string]string{}
			}
			e.Header[k] = v
		}
	}
	if utf8.Valid(ev.Body) {
		body := string(ev.Body)
		e.Body = &body
	} else {
		e.BodyBase64 = ev.Body
	}
	if ev.State == delivery.Refused {
		answer := strings.ToValidUTF8(string(ev.Answer), "\uFFFD")
		e.Answer = &answer
	}
	if ev.State == delivery.Received && ev.Lease.After(a.now()) {
		e.LeaseUntil, e.LeaseOwner = opt(ev.Lease), ev.Owner
	}
	return e
}

// serveEvents lists a handler's pending or dead events (both without
// ?state), oldest first.
func (a *AdminAPI) serveEvents(w http.ResponseWriter, r *http.Request, h adminHandler) error {
	var states []delivery.State
	switch s := r.URL.Query().Get("state"); s {
	case "":
		states = []delivery.State{delivery.Received, delivery.Dead}
	case "pending":
		states = []delivery.State{delivery.Received}
	case "dead":
		states = []delivery.State{delivery.Dead}
	default:
		return apiError(http.StatusBadRequest, "state %.40q: use pending or dead", s)
	}
	out := struct {
		Handler string       `json:"handler"`
		Events  []adminEvent `json:"events"`
	}{Handler: h.id, Events: []adminEvent{}}
	for _, st := range states {
		evs, err := h.queue.List(r.Context(), st)
		if err != nil {
			return apiError(http.StatusInternalServerError, "listing the %s events of handler %s: %v", stateName(st), h.id, err)
		}
		for _, ev := range evs {
			out.Events = append(out.Events, a.eventOf(ev, false))
		}
	}
	return writeAdminJSON(w, out)
}

func (a *AdminAPI) serveEvent(w http.ResponseWriter, r *http.Request, h adminHandler, id string) error {
	ev, err := h.queue.Find(r.Context(), id)
	if err != nil {
		return eventError(h, id, "reading", err)
	}
	return writeAdminJSON(w, a.eventOf(ev, true))
}

func (a *AdminAPI) serveRedeliver(w http.ResponseWriter, r *http.Request, h adminHandler, id string) error {
	if err := servedHere(h); err != nil {
		return err
	}
	ev, err := h.queue.Redeliver(r.Context(), id)
	out := struct {
		adminEvent
		Warning string `json:"warning,omitempty"`
	}{}
	switch {
	case errors.Is(err, delivery.ErrDeadKept) && ev != nil:
		out.Warning = "the event is pending again and will be delivered, but its dead record could not be deleted (" +
			err.Error() + "); the queue deletes it when it comes to the event, or redeliver it again"
	case err != nil:
		return eventError(h, id, "redelivering", err)
	}
	out.adminEvent = a.eventOf(ev, false)
	return writeAdminJSON(w, out)
}

func (a *AdminAPI) serveRedeliverDead(w http.ResponseWriter, r *http.Request, h adminHandler) error {
	if err := servedHere(h); err != nil {
		return err
	}
	evs, err := h.queue.RedeliverDead(r.Context())
	if err != nil {
		return apiError(http.StatusInternalServerError, "redelivered %d dead events of handler %s; the others could not be: %v",
			len(evs), h.id, err)
	}
	out := struct {
		Handler     string       `json:"handler"`
		Redelivered int          `json:"redelivered"`
		Events      []adminEvent `json:"events"`
	}{Handler: h.id, Redelivered: len(evs), Events: []adminEvent{}}
	for _, ev := range evs {
		out.Events = append(out.Events, a.eventOf(ev, false))
	}
	return writeAdminJSON(w, out)
}

func (a *AdminAPI) serveDrop(w http.ResponseWriter, r *http.Request, h adminHandler, id string) error {
	ev, err := h.queue.Drop(r.Context(), id)
	if err != nil {
		return eventError(h, id, "dropping", err)
	}
	out := struct {
		adminEvent
		Dropped bool `json:"dropped"`
	}{a.eventOf(ev, false), true}
	return writeAdminJSON(w, out)
}

// servedHere refuses a redelivery for a handler no oss_upload handler of
// this process serves: nothing here would deliver it.
func servedHere(h adminHandler) error {
	if h.served {
		return nil
	}
	return apiError(http.StatusConflict, "handler %s is not configured in this Caddy: its events would not be delivered from here; "+
		"redeliver them on an instance that serves it", h.id)
}

// eventError turns an error of an action on one event into the admin
// API's answer.
func eventError(h adminHandler, id, doing string, err error) error {
	var se *delivery.StateError
	switch {
	case errors.Is(err, delivery.ErrNoEvent):
		return apiError(http.StatusNotFound, "handler %s has no event %.140q", h.id, id)
	case errors.As(err, &se):
		why := "it is owed to the app and will be delivered"
		if se.State != delivery.Received {
			why = "its outcome is recorded and answers copies of its callback"
		}
		return apiError(http.StatusConflict, "event %s is %s, not dead: only dead events can be redelivered or dropped (%s)",
			id, stateName(se.State), why)
	}
	return apiError(http.StatusInternalServerError, "%s event %s of handler %s: %v", doing, id, h.id, err)
}

// writeAdminJSON answers v as JSON, on one line, without escaping &, <
// and > (callback bodies are full of &).
func writeAdminJSON(w http.ResponseWriter, v any) error {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := io.WriteString(w, buf.String())
	return err
}

// Interface guards.
var (
	_ caddy.Module      = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
