package caddyoss

import (
	"errors"
	"io/fs"
	"net/http"
	"path"
	"slices"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

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
