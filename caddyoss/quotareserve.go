package caddyoss

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/quota"
)

// What the signing routes reserve in the quota before they sign, and the
// 429 of a request that does not fit.

// quotaNoReservation is the oss_quota variable of an upload signed
// without a reservation of its own (an Uppy multipart upload started
// before the quota was configured): its upload is charged on its own.
const quotaNoReservation = "none"

// reservePostObject reserves the upload of a PostObject policy until the
// policy expires: the declared size, to which the policy's
// content-length-range is narrowed when the quota limits bytes, or
// max_size. Reservations end with their signature: an upload verified
// later is charged on its own, if it still fits.
func (h *Handler) reservePostObject(w http.ResponseWriter, r *http.Request, up *upload, in *osssign.Policy) error {
	if h.quota == nil {
		return nil
	}
	bytes := h.MaxSize
	if h.Quota.Bytes > 0 && up.hints.size > 0 {
		bytes, in.MaxSize = up.hints.size, up.hints.size
	}
	return h.reserveQuota(w, r, &up.custom, up.prefix, bytes, in.Expiration, up.route)
}

// reserveMultipart reserves an Uppy multipart upload (max_size, for
// multipartReservation) before it is started, and returns the id to seal
// into its upload id ("" without a quota).
func (u *uppyRoutes) reserveMultipart(w http.ResponseWriter, r *http.Request, up *upload) (string, error) {
	if u.quota == nil {
		return "", nil
	}
	if err := u.reserveQuota(w, r, &up.custom, up.prefix, u.MaxSize, u.now().Add(multipartReservation), signRouteUppy); err != nil {
		return "", err
	}
	return up.custom[quotaIDVar], nil
}

// multipartQuotaVars adds to custom the quota variables of the Uppy
// multipart upload whose sealed upload id (checked by uppyTarget) is
// sealed: its reservation, under the completing request's quota key.
func (u *uppyRoutes) multipartQuotaVars(r *http.Request, custom *map[string]string, sealed string) error {
	if u.quota == nil {
		return nil
	}
	prefix, err := u.keyPrefix(replacer(r))
	if err != nil {
		return u.forbidden(r, err)
	}
	key, err := u.quota.quotaKey(replacer(r), prefix)
	if err != nil {
		return u.forbidden(r, err)
	}
	id := quotaNoReservation
	if i := strings.LastIndexByte(sealed, '.'); i > 0 {
		if _, rid := splitSealedReservation(sealed[:i]); rid != "" {
			id = rid
		}
	}
	setQuotaVars(custom, id, key)
	return nil
}

// splitSealedReservation splits the opened part of an Uppy upload id
// (its seal removed) into OSS's upload id and the reservation sealed with
// it after a '~' ("" without one).
func splitSealedReservation(opened string) (ossID, reservation string) {
	ossID, reservation, _ = strings.Cut(opened, "~")
	return ossID, reservation
}

// setQuotaVars adds the quota variables of a reservation (id) in key's
// quota to custom, the callback variables to issue (allocated when nil).
func setQuotaVars(custom *map[string]string, id, key string) {
	if *custom == nil {
		*custom = make(map[string]string, 2)
	}
	(*custom)[quotaIDVar], (*custom)[quotaKeyVar] = id, key
}

// reserveQuota reserves, in the quota of the request's key, one upload of
// up to bytes until expires, and adds the reservation to custom (the
// callback variables to issue; allocated when nil) so that the callback
// or confirm of the upload settles it. It sets the X-Quota-Remaining-*
// headers. A request that does not fit gets a quotaRefused (429 with
// Retry-After); a storage failure a 503. route names the route in metrics.
func (h *Handler) reserveQuota(w http.ResponseWriter, r *http.Request, custom *map[string]string, prefix string, bytes int64, expires time.Time, route string) error {
	g := h.quota
	if g == nil || r.Method == http.MethodHead {
		return nil // a HEAD answer carries no signature to upload with
	}
	key, err := g.quotaKey(replacer(r), prefix)
	if err != nil {
		return h.forbidden(r, err)
	}
	res, err := g.ledger.Reserve(r.Context(), ledgerKey(key), bytes, expires)
	if err != nil {
		var refusal *quota.Refusal
		if errors.As(err, &refusal) {
			return h.quotaRefused(w, r, refusal, route)
		}
		if r.Context().Err() != nil {
			return caddyhttp.Error(499, r.Context().Err())
		}
		return h.unavailable(r, "reserving the upload in the quota", err)
	}
	setQuotaVars(custom, res.ID, key)
	setRemaining(w.Header(), res.Usage.Remaining())
	return nil
}

// setRemaining sets the X-Quota-Remaining-* headers: what the key may
// still use of each limit that is set.
func setRemaining(hdr http.Header, left quota.Remaining) {
	for _, v := range [...]struct {
		name string
		n    int64
	}{
		{"X-Quota-Remaining-Bytes", left.Bytes},
		{"X-Quota-Remaining-Uploads", left.Uploads},
		{"X-Quota-Remaining-Pending", left.Pending},
	} {
		if v.n >= 0 {
			hdr[v.name] = []string{strconv.FormatInt(v.n, 10)}
		}
	}
}

// quotaRefusal is the error of a signing request that does not fit its
// quota: a 429 whose JSON body gives the refusal's fields next to the
// message.
type quotaRefusal struct {
	refusal    *quota.Refusal
	retryAfter time.Duration // 0 when the request never fits
}

// appendTo adds the refusal's "quota" member to an error answer:
// {"reason", "limit", "used", "asked"} and, when room frees up,
// "retry_at" (RFC 3339) and "retry_after" (seconds, as Retry-After).
func (e *quotaRefusal) appendTo(o *jsonw.Object) {
	r := e.refusal
	o.Object("quota", func(q *jsonw.Object) {
		q.Str("reason", string(r.Reason))
		q.Int("limit", r.Limit)
		q.Int("used", r.Used)
		q.Int("asked", r.Asked)
		if !r.RetryAt.IsZero() {
			q.Str("retry_at", r.RetryAt.UTC().Format(time.RFC3339))
			q.Int("retry_after", int64(e.retryAfter/time.Second))
		}
	})
}

func (e *quotaRefusal) Error() string {
	r := e.refusal
	if r.RetryAt.IsZero() {
		return fmt.Sprintf("upload quota: this upload needs %d %s, more than the limit of %d", r.Asked, quotaUnit(r.Reason), r.Limit)
	}
	return fmt.Sprintf("upload quota exceeded: %d of %d %s used, %d more asked; retry after %s",
		r.Used, r.Limit, quotaUnit(r.Reason), r.Asked, r.RetryAt.UTC().Format(time.RFC3339))
}

// quotaUnit is what a limit counts, for messages.
func quotaUnit(r quota.Reason) string {
	switch r {
	case quota.ReasonBytes:
		return "bytes"
	case quota.ReasonUploads:
		return "uploads per window"
	}
	return "pending uploads"
}

// quotaRefused counts a refusal, sets Retry-After (when room frees up)
// and returns the 429.
func (h *Handler) quotaRefused(w http.ResponseWriter, r *http.Request, refusal *quota.Refusal, route string) error {
	countQuotaRefusal(route, refusal.Reason)
	d := refusal.RetryAfter(h.now())
	if d > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(d/time.Second), 10))
	}
	h.logger.Info("upload quota exceeded", zap.String("reason", string(refusal.Reason)), zap.Int64("limit", refusal.Limit),
		zap.Int64("used", refusal.Used), zap.Int64("asked", refusal.Asked), zapRemote(r))
	return caddyhttp.Error(http.StatusTooManyRequests, &quotaRefusal{refusal: refusal, retryAfter: d})
}
