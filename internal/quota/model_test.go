package quota

import (
	"time"
)

// model is the ledger's specification, written as plainly as possible:
// every reservation and charge kept on its own, usage counted by walking
// them, "when room frees up" found by trying each later moment.
type model struct {
	limits       Limits
	window, slot int64
	keys         map[string]*modelKey
}

type modelKey struct {
	res     map[string]*modelRes // by the ledger's reservation id
	charges []modelCharge
}

type modelRes struct {
	bytes, expiry int64
	used          bool // an upload settled it
}

type modelCharge struct{ bytes, until int64 }

func newModel(limits Limits, window time.Duration) *model {
	w := int64(window / time.Second)
	return &model{limits: limits, window: w, slot: max(1, w/Slots), keys: map[string]*modelKey{}}
}

func (m *model) key(k string) *modelKey {
	if m.keys[k] == nil {
		m.keys[k] = &modelKey{res: map[string]*modelRes{}}
	}
	return m.keys[k]
}

// usageAt counts key's usage at second now: reservations live until their
// expiry unless used, charges until their end of window.
func (m *model) usageAt(k string, now int64) Usage {
	u := Usage{Limits: m.limits}
	for _, r := range m.key(k).res {
		if !r.used && r.expiry > now {
			u.Pending++
			u.PendingBytes += r.bytes
		}
	}
	u.Bytes, u.Uploads = u.PendingBytes, u.Pending
	for _, c := range m.key(k).charges {
		if c.until > now {
			u.Bytes += c.bytes
			u.Uploads++
		}
	}
	return u
}

func (m *model) usage(k string, at time.Time) Usage {
	u := m.usageAt(k, at.Unix())
	u.At = at
	return u
}

// refuse is the refusal of asking bytes, uploads and pending more of k at
// second now, or nil when it fits. RetryAt is the first later second at
// which it would fit; Reason the limit that frees last (one never freeing
// first, the order bytes, uploads, pending breaking ties).
func (m *model) refuse(k string, now, bytes, uploads, pending int64) *Refusal {
	pick := func(u Usage, r Reason) int64 {
		switch r {
		case ReasonBytes:
			return u.Bytes
		case ReasonUploads:
			return u.Uploads
		}
		return u.Pending
	}
	var worst *Refusal
	for _, d := range []struct {
		reason      Reason
		limit, need int64
	}{{ReasonBytes, m.limits.Bytes, bytes}, {ReasonUploads, m.limits.Uploads, uploads}, {ReasonPending, m.limits.Pending, pending}} {
		used := pick(m.usageAt(k, now), d.reason)
		if d.limit == 0 || d.need == 0 || used+d.need <= d.limit {
			continue
		}
		r := &Refusal{Reason: d.reason, Limit: d.limit, Used: used, Asked: d.need}
		if d.need <= d.limit {
			for t := range m.moments(k, now) {
				if pick(m.usageAt(k, t), d.reason)+d.need <= d.limit && (r.RetryAt.IsZero() || t < r.RetryAt.Unix()) {
					r.RetryAt = time.Unix(t, 0).UTC()
				}
			}
		}
		if worst == nil || !worst.RetryAt.IsZero() && (r.RetryAt.IsZero() || r.RetryAt.After(worst.RetryAt)) {
			worst = r
		}
	}
	return worst
}

// moments are the seconds after now at which something of k stops
// counting.
func (m *model) moments(k string, now int64) map[int64]bool {
	out := map[int64]bool{}
	for _, r := range m.key(k).res {
		if r.expiry > now {
			out[r.expiry] = true
		}
	}
	for _, c := range m.key(k).charges {
		if c.until > now {
			out[c.until] = true
		}
	}
	return out
}

// reserve is Reserve: the expiry rounded up to the second, granted when it
// fits.
func (m *model) reserve(k string, at time.Time, bytes int64, expires time.Time) (expiry int64, refusal *Refusal) {
	expiry = expires.Unix()
	if expires.Nanosecond() > 0 {
		expiry++
	}
	return expiry, m.refuse(k, at.Unix(), bytes, 1, 1)
}

// granted records a reservation Reserve granted under id.
func (m *model) granted(k, id string, bytes, expiry int64) {
	m.key(k).res[id] = &modelRes{bytes: bytes, expiry: expiry}
}

// settle is Settle: a live reservation is used up, and replaced by the
// charge without a check when the upload is no larger; otherwise the
// upload is charged only if it fits.
func (m *model) settle(k, id string, at time.Time, bytes int64) (reserved bool, refusal *Refusal) {
	now := at.Unix()
	r := m.key(k).res[id]
	if r != nil && !r.used && r.expiry > now {
		r.used, reserved = true, true
	}
	if !reserved || bytes > r.bytes {
		if refusal = m.refuse(k, now, bytes, 1, 0); refusal != nil {
			return reserved, refusal
		}
	}
	until := (now/m.slot+1)*m.slot + m.window
	m.key(k).charges = append(m.key(k).charges, modelCharge{bytes, until})
	return reserved, nil
}

// reset forgets the charges that count now.
func (m *model) reset(k string, at time.Time) {
	kept := m.key(k).charges[:0]
	for _, c := range m.key(k).charges {
		if c.until <= at.Unix() {
			kept = append(kept, c)
		}
	}
	m.key(k).charges = kept
}
