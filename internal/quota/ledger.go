package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// DefaultWindow is Config.Window's default.
const DefaultWindow = 24 * time.Hour

// Slots is the number of slots a Window is counted in: a settled upload
// counts until the end of the Window that starts at the end of its slot.
const Slots = 60

// Config is what a Ledger is built from. Every instance sharing Storage
// and Prefix shares the ledger, and should have the same limits: each
// decides with its own.
type Config struct {
	// Storage holds the ledger.
	Storage certmagic.Storage
	// Prefix is the ledger's namespace in Storage, for example
	// "oss_upload/quota/<handler-id>"; no leading or trailing '/'.
	Prefix string
	// Bytes limits the bytes a key may use per Window: the sizes of the
	// uploads settled in the window plus the bytes of its live
	// reservations. Default 0: no limit.
	Bytes int64
	// Uploads limits the uploads a key may make per Window: settled
	// uploads in the window plus live reservations. Default 0: no limit.
	Uploads int64
	// Pending limits a key's live reservations (signed uploads not yet
	// settled and not expired) at once. Default 0: no limit.
	Pending int64
	// Window is the span Bytes and Uploads are counted over, a sliding
	// window counted in Slots slots: a settled upload counts from its
	// settlement for at least Window and at most Window plus one slot
	// (Window/Slots, whole seconds, at least one), so that no span of
	// Window ever holds more than the limits. Default DefaultWindow (24 h).
	Window time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives the ledger's warnings (default: none).
	Logger *zap.Logger
}

// Ledger keeps per-key quotas in storage. Its methods are safe for
// concurrent use.
type Ledger struct {
	storage certmagic.Storage
	prefix  string
	limits  Limits
	window  int64 // seconds
	slot    int64 // seconds
	now     func() time.Time
	logger  *zap.Logger
	id      string // "w" and 6 characters: the start of its writers' names
	seq     atomic.Uint64
	// quick, when set, writes a record of reservations without waiting
	// for it to be durable, and each key then has two own records: its
	// reservations, written with quick, and its charges, credits and
	// settlements, written with Store. New sets it for the file system
	// (see quickFileWriter); nil elsewhere: one record holds everything.
	quick func(ctx context.Context, key string, value []byte) error

	mu   sync.Mutex
	keys map[string]*keyState // by storage directory
}

// New checks cfg and builds a Ledger, with an id of its own.
func New(cfg Config) (*Ledger, error) {
	switch {
	case cfg.Storage == nil:
		return nil, errors.New("quota: no storage")
	case cfg.Prefix == "" || strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/"):
		return nil, fmt.Errorf("quota: prefix %q must be non-empty without a leading or trailing '/'", cfg.Prefix)
	case cfg.Bytes < 0 || cfg.Uploads < 0 || cfg.Pending < 0:
		return nil, fmt.Errorf("quota: negative limit (bytes %d, uploads %d, pending %d)", cfg.Bytes, cfg.Uploads, cfg.Pending)
	case cfg.Window < 0 || cfg.Window > 0 && cfg.Window < time.Second:
		return nil, fmt.Errorf("quota: window %v is shorter than a second", cfg.Window)
	}
	l := &Ledger{
		storage: cfg.Storage,
		prefix:  cfg.Prefix,
		limits:  Limits{Bytes: cfg.Bytes, Uploads: cfg.Uploads, Pending: cfg.Pending},
		now:     cfg.Now,
		logger:  cfg.Logger,
		id:      "w" + randomName(6),
		keys:    map[string]*keyState{},
	}
	window := cfg.Window
	if window == 0 {
		window = DefaultWindow
	}
	l.window = int64(window / time.Second)
	l.slot = max(1, l.window/Slots)
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = zap.NewNop()
	}
	if fs, ok := cfg.Storage.(*certmagic.FileStorage); ok {
		l.quick = quickFileWriter(fs)
	}
	return l, nil
}

// newWriter names a new record of this Ledger.
func (l *Ledger) newWriter() string { return l.id + randomName(writerLen-len(l.id)) }

// Limits are the ledger's limits.
func (l *Ledger) Limits() Limits { return l.limits }

// Window is the span Bytes and Uploads are counted over.
func (l *Ledger) Window() time.Duration { return time.Duration(l.window) * time.Second }

// Reserve reserves, for key, one upload of up to bytes signed until
// expires, if it fits the key's quota: the reservation counts one
// pending reservation, one upload and its bytes until Settle replaces it
// with the upload's real size or it expires (expires rounded up to a whole
// second). A request that does not fit gets a *Refusal and nothing is
// recorded. Any other error is a failure (of storage, say what failed),
// after which nothing was granted.
func (l *Ledger) Reserve(ctx context.Context, key string, bytes int64, expires time.Time) (Reservation, error) {
	if bytes < 0 {
		return Reservation{}, fmt.Errorf("quota: negative reservation (%d bytes)", bytes)
	}
	expiry := expires.Unix()
	if expires.Nanosecond() > 0 {
		expiry++
	}
	if expiry <= l.now().Unix() {
		return Reservation{}, fmt.Errorf("quota: reservation already expired (%s)", expires.UTC().Format(time.RFC3339))
	}
	dir, tag, err := l.locate(key)
	if err != nil {
		return Reservation{}, err
	}
	o := &op{kind: opReserve, tag: tag, bytes: bytes, expiry: expiry}
	if err := l.do(ctx, dir, o); err != nil {
		return Reservation{}, err
	}
	return Reservation{ID: o.id.String(), Bytes: bytes, Expires: time.Unix(expiry, 0).UTC(), Usage: o.usage}, nil
}

// Settle charges key for a verified upload of bytes. With id, the
// Reservation.ID the upload was signed with, a live reservation is
// released and replaced by the charge, which then needs no room unless it
// is larger than the reservation. Without id (""), or when the
// reservation is no longer live (expired, or settled by an earlier
// upload), the upload is charged only if it fits: otherwise Settle
// returns a *Refusal, charges nothing, and the caller deletes the object.
// A settled upload counts one upload and its bytes for a Window (see
// Config.Window).
//
// Settle charges every call: the caller settles each upload once (the
// callback route, after its event's fresh claim). A nil error means the
// charge is in storage; any other error means nothing was charged (a
// reservation named may have been released), and the caller does not
// count the upload as settled.
func (l *Ledger) Settle(ctx context.Context, key, id string, bytes int64) (Settlement, error) {
	if bytes < 0 {
		return Settlement{}, fmt.Errorf("quota: negative upload size (%d bytes)", bytes)
	}
	dir, tag, err := l.locate(key)
	if err != nil {
		return Settlement{}, err
	}
	o := &op{kind: opSettle, tag: tag, bytes: bytes}
	if id != "" {
		if o.id, err = parseID(id); err != nil {
			return Settlement{}, err
		}
	}
	if err := l.do(ctx, dir, o); err != nil {
		return Settlement{}, err
	}
	return Settlement{Reserved: o.reserved, Usage: o.usage}, nil
}

// Usage reads what counts against key's limits now.
func (l *Ledger) Usage(ctx context.Context, key string) (Usage, error) {
	return l.operate(ctx, key, opUsage)
}

// Reset forgives what key's settled uploads count in the window, on every
// instance, and returns the usage after it. Live reservations stay: they
// are released when settled or expired. Resets of one key are serialized
// by a storage lock.
func (l *Ledger) Reset(ctx context.Context, key string) (Usage, error) {
	return l.operate(ctx, key, opReset)
}

// operate runs an operator's op of kind for key.
func (l *Ledger) operate(ctx context.Context, key string, kind opKind) (Usage, error) {
	dir, _, err := l.locate(key)
	if err != nil {
		return Usage{}, err
	}
	o := &op{kind: kind}
	err = l.do(ctx, dir, o)
	return o.usage, err
}

// Run, until ctx ends, sweeps each minute (Sweep: forgets the keys whose
// own records have nothing left that counts, deleting those records, and
// rewrites the records a failed write left behind) and purges each hour
// (Purge: deletes the expired records of stopped Ledgers). Without Run a
// Ledger keeps what it wrote in memory for as long as it counts, and
// records of keys nobody uses any more stay in storage.
func (l *Ledger) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for minutes := 1; ; minutes++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Sweep()
			if minutes%60 == 0 {
				l.Purge(ctx)
			}
		}
	}
}

// Sweep starts, for every idle key whose own record has expired or whose
// last write failed, a round that deletes or rewrites that record.
func (l *Ledger) Sweep() {
	now := l.now().Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	for dir, ks := range l.keys {
		if !ks.running && len(ks.queue) == 0 && ks.needsSweep(now) {
			ks.queue = append(ks.queue, &op{kind: opSweep, done: make(chan struct{})})
			ks.running = true
			go l.run(dir, ks)
		}
	}
}
