package caddyoss

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// handlerSummary is a handler in the admin API's answers.
type handlerSummary struct {
	ID string `json:"id"`
	// Served: an oss_upload handler of this process has this id (its
	// queue delivers redelivered events at once).
	Served  bool `json:"served"`
	Pending int  `json:"pending"`
	Dead    int  `json:"dead"`
	// Quota is the handler's quota when it has one and is served here.
	Quota *quotaLimits `json:"quota,omitempty"`
}

func summarize(ctx context.Context, h adminHandler) (handlerSummary, error) {
	s := handlerSummary{ID: h.id, Served: h.served}
	if h.served {
		s.Quota = servedQuota(h.id)
	}
	var err error
	if s.Pending, err = h.queue.CountPending(ctx); err != nil {
		return s, err
	}
	s.Dead, err = h.queue.CountDead(ctx)
	return s, err
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
