package quota

import (
	"fmt"
	"time"
)

// Reason names the limit a refusal is about. The values are fit for a
// metric label and a JSON field.
type Reason string

// The reasons of a Refusal, one per limit of Config.
const (
	ReasonBytes   Reason = "bytes"   // Config.Bytes: bytes per Window
	ReasonUploads Reason = "uploads" // Config.Uploads: uploads per Window
	ReasonPending Reason = "pending" // Config.Pending: live reservations at once
)

// Refusal is the error of a Reserve, or of a Settle, that does not fit the
// key's quota. Nothing was recorded for the refused request. A signing
// route answers it with 429, a Retry-After of RetryAfter and a JSON body
// of the fields; a callback route deletes the object it was settling.
type Refusal struct {
	// Reason is the limit that does not fit. When several do not fit, it
	// is the one whose room frees up last (a limit that can never fit
	// first), so that RetryAt holds for all of them.
	Reason Reason
	// Limit is that limit.
	Limit int64
	// Used is what counts against it now: settled uploads (or their
	// bytes) in the window plus live reservations (or their bytes).
	Used int64
	// Asked is what the request needed of it: the bytes, or one upload or
	// one pending reservation.
	Asked int64
	// RetryAt is when enough room frees up for the request, counting only
	// what expires (live reservations at their expiry, settled uploads at
	// the end of their window): a reservation settled for less, or a
	// Reset, can free room sooner. It is zero when Asked alone exceeds
	// Limit: the request never fits.
	RetryAt time.Time
}

func (r *Refusal) Error() string {
	if r.RetryAt.IsZero() {
		return fmt.Sprintf("quota: %s: %d asked exceeds the limit of %d", r.Reason, r.Asked, r.Limit)
	}
	return fmt.Sprintf("quota: %s: %d of %d used, %d asked; room at %s",
		r.Reason, r.Used, r.Limit, r.Asked, r.RetryAt.UTC().Format(time.RFC3339))
}

// RetryAfter is the wait until RetryAt, in whole seconds rounded up and at
// least one second (the value of a Retry-After header), or 0 when the
// request never fits.
func (r *Refusal) RetryAfter(now time.Time) time.Duration {
	if r.RetryAt.IsZero() {
		return 0
	}
	d := r.RetryAt.Sub(now)
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// Limits are the limits of a Ledger, as in its Config; 0 is no limit.
type Limits struct {
	Bytes   int64 `json:"bytes"`
	Uploads int64 `json:"uploads"`
	Pending int64 `json:"pending"`
}

// Usage is what counts against a key's limits at one moment.
type Usage struct {
	// Bytes are the bytes of the uploads settled in the window plus the
	// bytes of live reservations.
	Bytes int64 `json:"bytes"`
	// Uploads are the uploads settled in the window plus live
	// reservations.
	Uploads int64 `json:"uploads"`
	// Pending are the live reservations: signed, not yet settled, not
	// expired.
	Pending int64 `json:"pending"`
	// PendingBytes are the bytes of the live reservations (part of Bytes).
	PendingBytes int64 `json:"pending_bytes"`
	// Limits are the ledger's limits.
	Limits Limits `json:"limits"`
	// At is the moment counted.
	At time.Time `json:"at"`
}

// Remaining is what a key may still use: the limit minus what is used
// (never below 0), or -1 for a dimension without a limit.
type Remaining struct {
	Bytes   int64 `json:"bytes"`
	Uploads int64 `json:"uploads"`
	Pending int64 `json:"pending"`
}

// Remaining is what u leaves of its limits (for answer headers such as
// X-Quota-Remaining-Bytes).
func (u Usage) Remaining() Remaining {
	left := func(limit, used int64) int64 {
		if limit == 0 {
			return -1
		}
		return max(0, limit-used)
	}
	return Remaining{
		Bytes:   left(u.Limits.Bytes, u.Bytes),
		Uploads: left(u.Limits.Uploads, u.Uploads),
		Pending: left(u.Limits.Pending, u.Pending),
	}
}

// Reservation is a granted Reserve.
type Reservation struct {
	// ID names the reservation for Settle. It is made of [0-9a-z.] and at
	// most 64 bytes long, fit for a custom callback variable. Settle
	// trusts what it spells (its writer, expiry and bytes), so it must come
	// back unaltered from a source the caller authenticates: the callback
	// binding's MAC, which covers every issued variable.
	ID string
	// Bytes are the bytes reserved.
	Bytes int64
	// Expires is when the reservation lapses if no upload settles it: the
	// expiry asked, rounded up to a whole second.
	Expires time.Time
	// Usage is the key's usage with the reservation counted.
	Usage Usage
}

// Settlement is a Settle that was charged.
type Settlement struct {
	// Reserved is true when the upload used a live reservation, which the
	// charge replaced; false when it was charged on its own (no
	// reservation, or one expired, already settled, or settled at the same
	// moment on another instance).
	Reserved bool
	// Usage is the key's usage with the charge counted.
	Usage Usage
}
