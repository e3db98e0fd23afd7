package caddyoss

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/quota"
)

// QuotaConfig limits what each user may upload: bytes and uploads per
// window, and signed uploads not yet verified at once. A signing route
// reserves what its answer allows before it signs, and answers 429 when
// that does not fit; the callback and confirm routes replace the
// reservation with the object's real size once the upload is verified. The
// ledger lives in Caddy's storage: every instance sharing the storage
// enforces one quota per key. See docs/quotas.md.
type QuotaConfig struct {
	// Key names whose quota a request counts against, such as
	// {http.auth.user.id}; request placeholders are expanded per request,
	// and a placeholder that expands to nothing refuses the request (403).
	// Default: the expanded key_prefix.
	Key string `json:"key,omitempty"`

	// Bytes limits the bytes a key may upload per Window: the sizes of
	// its verified uploads plus what its live reservations allow.
	// It must be at least max_size. Default: 0, no limit.
	Bytes int64 `json:"bytes,omitempty"`

	// Uploads limits the uploads a key may make per Window: verified
	// uploads plus live reservations. Default: 0, no limit.
	Uploads int64 `json:"uploads,omitempty"`

	// Pending limits a key's live reservations at once: signed uploads not
	// yet verified whose signature has not expired. Default: 0, no limit.
	Pending int64 `json:"pending,omitempty"`

	// Window is the sliding window Bytes and Uploads are counted over: a
	// verified upload counts for Window (plus at most one sixtieth of it)
	// from its verification. Default: 24h.
	Window caddy.Duration `json:"window,omitempty"`
}

// The callback variables that carry an upload's reservation: its id and
// the quota key it was made for. The binding's MAC covers both.
const (
	quotaIDVar  = "oss_quota"
	quotaKeyVar = "oss_quota_key"
)

// maxQuotaKeyBytes bounds an expanded quota key.
const maxQuotaKeyBytes = 256

// multipartReservation is how long an Uppy multipart upload's reservation
// lives: one completed later is charged on its own at verification.
const multipartReservation = time.Hour

// quotaPrefix is where the ledgers live in Caddy's storage, below which
// each handler's is named by its id.
const quotaPrefix = "oss_upload/quota"

// quotaGate is a handler's quota: its ledger and how a request names its
// key.
type quotaGate struct {
	ledger *quota.Ledger
	keyTpl requestTemplate // QuotaConfig.Key; raw "" for the key prefix
	stop   context.CancelFunc
	done   chan struct{}
}

// liveLedgers are the ledgers of the handlers in the running configs, by
// handler id, for the admin API.
var liveLedgers sync.Map // *quota.Ledger → handler id

func (q *QuotaConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return eachSubdirective(d, "quota ", nil, func(name string) error {
		var err error
		switch name {
		case "key":
			err = oneArg(d, &q.Key)
		case "bytes":
			err = q.limitArg(d, &q.Bytes, true)
		case "uploads":
			err = q.limitArg(d, &q.Uploads, false)
		case "pending":
			var v string
			if err = oneArg(d, &v); err == nil {
				q.Pending, err = countArg(d, name, v)
			}
		case "window":
			var w caddy.Duration
			if err = durationArg(d, &w); err == nil {
				err = q.setWindow(d, w)
			}
		default:
			return d.Errf("unrecognized quota subdirective '%s'", name)
		}
		return err
	})
}

// limitArg reads "<n> [per <window>]": a size for bytes, a count for
// uploads.
func (q *QuotaConfig) limitArg(d *caddyfile.Dispenser, dst *int64, size bool) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 && (len(args) != 3 || args[1] != "per") {
		return d.Errf("%s: want '%s <n>' or '%s <n> per <window>', such as '%s %s per 24h'", name, name, name, name, map[bool]string{true: "2GiB", false: "500"}[size])
	}
	if size {
		n, err := humanize.ParseBytes(args[0])
		if err != nil || n == 0 || n > 1<<62 {
			return d.Errf("%s: invalid size '%s' (a positive size, in bytes or units such as 2GB or 2GiB)", name, args[0])
		}
		*dst = int64(n)
	} else {
		n, err := countArg(d, name, args[0])
		if err != nil {
			return err
		}
		*dst = n
	}
	if len(args) == 3 {
		w, err := caddy.ParseDuration(args[2])
		if err != nil {
			return d.Errf("%s: invalid window '%s' (use units such as 1h, 24h or 7d)", name, args[2])
		}
		return q.setWindow(d, caddy.Duration(w))
	}
	return nil
}

// setWindow sets the window, which bytes and uploads share.
func (q *QuotaConfig) setWindow(d *caddyfile.Dispenser, w caddy.Duration) error {
	if q.Window != 0 && q.Window != w {
		return d.Errf("quota: bytes and uploads are counted over one window; got %s and %s", time.Duration(q.Window), time.Duration(w))
	}
	q.Window = w
	return nil
}

// countArg reads a positive count v of subdirective name.
func countArg(d *caddyfile.Dispenser, name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, d.Errf("%s: must be a positive integer, got '%s'", name, v)
	}
	return n, nil
}

// validateQuota checks the quota block against the rest of the handler.
func (h *Handler) validateQuota() []error {
	q := h.Quota
	if q == nil {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("quota: "+format, args...)) }
	switch {
	case q.Bytes < 0 || q.Uploads < 0 || q.Pending < 0:
		add("bytes, uploads and pending must not be negative")
	case q.Bytes == 0 && q.Uploads == 0 && q.Pending == 0:
		add("set at least one of bytes, uploads or pending")
	}
	if w := time.Duration(q.Window); w < 0 || w > 0 && w < time.Second {
		add("window must be at least 1s, got %s", w)
	}
	if q.Bytes > 0 {
		switch {
		case h.MaxSize == 0:
			add("bytes needs max_size: an upload whose size the client does not declare reserves max_size")
		case q.Bytes < h.MaxSize:
			add("bytes %s is below max_size %s: an upload of max_size could never fit; raise bytes or lower max_size",
				humanize.IBytes(uint64(q.Bytes)), humanize.IBytes(uint64(h.MaxSize)))
		}
	}
	c := h.Callback
	if c == nil || c.VerifyOnly || (h.CallbackPath == routeOff && !h.confirmOn()) {
		add("uploads are charged when this handler verifies them: add a callback block (without verify_only) with the callback route on, or confirm_path")
	}
	if c != nil {
		for _, name := range []string{quotaIDVar, quotaKeyVar} {
			if _, ok := c.Vars[name]; ok {
				add("the callback var name %q is reserved for the quota", name)
			}
		}
	}
	return errs
}

// provisionQuota builds the handler's ledger in Caddy's storage and runs
// its housekeeping until the config is unloaded.
func (h *Handler) provisionQuota(ctx caddy.Context) error {
	q := h.Quota
	if q == nil {
		return nil
	}
	l, err := quota.New(quota.Config{
		Storage: h.storage,
		Prefix:  quotaPrefix + "/" + h.id,
		Bytes:   q.Bytes,
		Uploads: q.Uploads,
		Pending: q.Pending,
		Window:  time.Duration(q.Window),
		Now:     h.now,
		Logger:  h.logger.Named("quota"),
	})
	if err != nil {
		return err
	}
	g := &quotaGate{ledger: l, keyTpl: newRequestTemplate(q.Key), done: make(chan struct{})}
	if !strings.Contains(q.Key, "{") && !strings.Contains(h.KeyPrefix, "{") {
		h.logger.Warn("quota: the quota key is the same for every request, so the whole site shares one quota; set quota key to a placeholder such as {http.auth.user.id} for one per user",
			zap.String("key", h.quotaKeyText()))
	}
	rctx, stop := context.WithCancel(ctx)
	g.stop = stop
	go func() {
		defer close(g.done)
		l.Run(rctx)
	}()
	h.quota = g
	liveLedgers.Store(l, h.id)
	return nil
}

// cleanup stops the ledger's housekeeping.
func (g *quotaGate) cleanup() {
	liveLedgers.Delete(g.ledger)
	g.stop()
	<-g.done
}

// quotaKeyText is the configured quota key, as the startup line shows it.
func (h *Handler) quotaKeyText() string {
	if h.Quota.Key != "" {
		return h.Quota.Key
	}
	return h.KeyPrefix
}

// ledgerKey is the name the ledger counts a quota key under. The ledger
// holds no empty key; the empty one (the expanded key_prefix of a handler
// whose key_prefix is empty: one quota for the whole site) is counted under
// a NUL byte, which no expanded key contains.
func ledgerKey(key string) string {
	if key == "" {
		return "\x00"
	}
	return key
}

// quotaKey expands the request's quota key: QuotaConfig.Key, or the
// expanded key prefix.
func (g *quotaGate) quotaKey(repl *caddy.Replacer, prefix string) (string, error) {
	if g.keyTpl.raw == "" {
		return prefix, nil
	}
	var buf [128]byte
	b, err := g.keyTpl.appendExpanded(buf[:0], repl)
	if err != nil {
		return "", fmt.Errorf("quota key: %v", err)
	}
	if err := checkExpanded(string(b)); err != nil {
		return "", fmt.Errorf("quota key expands to a value that %v", err)
	}
	if len(b) > maxQuotaKeyBytes {
		return "", fmt.Errorf("quota key expands to more than %d bytes", maxQuotaKeyBytes)
	}
	return string(b), nil
}
