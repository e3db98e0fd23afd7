package delivery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Outcomes passed to Config.Observe.
const (
	OutcomeDelivered    = "delivered"     // the app answered 2xx
	OutcomeRefused      = "refused"       // the app refused the event for good (4xx)
	OutcomeQueued       = "queued"        // the first attempt failed; the event is left to the queue
	OutcomeRetried      = "retried"       // the queue made one more attempt
	OutcomeDead         = "dead"          // given up after RetryFor
	OutcomeLost         = "lost"          // an owed record vanished from storage
	OutcomeDuplicate    = "duplicate"     // a claim found the id already recorded
	OutcomeStorageError = "storage_error" // a storage operation failed
)

// Defaults for Config fields left zero.
const (
	DefaultRetryFor = 24 * time.Hour
	DefaultLease    = 2 * time.Minute
	DefaultKeepDead = 7 * 24 * time.Hour
	DefaultParallel = 4
	DefaultTick     = time.Second

	scanEvery  = 10 * time.Second
	purgeEvery = 10 * time.Minute
)

// Config is what a Queue is built from.
type Config struct {
	// Storage holds the records; instances sharing it share the events.
	Storage certmagic.Storage
	// Prefix is the handler's namespace in Storage, for example
	// "oss_upload/events/<handler-id>"; no leading or trailing '/'.
	Prefix string
	// Instance names this process; it owns the leases it takes.
	Instance string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives the queue's logs (default: none).
	Logger *zap.Logger
	// Send makes one attempt to deliver ev to the app. It returns the
	// app's status and answer body, or status 0 and an error when the app
	// could not be reached. Its ctx ends at half the lease.
	Send func(ctx context.Context, ev *Event) (status int, answer []byte, err error)
	// RetryFor is how long after Created (or after an operator redelivered
	// it) a failed event is still retried; then it is dead (default
	// DefaultRetryFor).
	RetryFor time.Duration
	// Lease is how long an attempt reserves an event (default
	// DefaultLease). Each attempt of the queue gets half of it, so that a
	// lease always outlives its attempt.
	Lease time.Duration
	// KeepDead is how long dead records are kept after the later of their
	// Expires and the moment they were given up (default DefaultKeepDead).
	KeepDead time.Duration
	// Observe, if set, is told each outcome (the Outcome constants). It is
	// called from several goroutines.
	Observe func(outcome string)
	// OnSettle, if set, is called once for each outcome this queue
	// records: an event delivered, refused or dead, given its record as
	// written (State, Attempts, Status, LastError; Answer for a refused
	// event). It is called after the storage write succeeded, outside the
	// event's lock, by the queue that made the write, and never for an
	// outcome that was not written (one written later, on the queue's next
	// try, is reported then). It is called from several goroutines, on the
	// path of Settle's caller (a first attempt's answer waits for it), so
	// it must return quickly, and it must not modify the record's Body,
	// Header or Answer. Default: nothing.
	OnSettle func(Event)
	// Parallel bounds the attempts Run makes at once (default 4).
	Parallel int
	// Tick is how often Run looks at the clock for due work (default 1 s).
	Tick time.Duration
}

// Queue records events and delivers the ones owed. Its methods are safe
// for concurrent use; Run is called once.
type Queue struct {
	storage  certmagic.Storage
	prefix   string
	instance string
	now      func() time.Time
	logger   *zap.Logger
	send     func(ctx context.Context, ev *Event) (int, []byte, error)
	retryFor time.Duration
	lease    time.Duration
	keepDead time.Duration
	observe  func(string)
	onSettle func(Event)
	parallel int
	tick     time.Duration
	rand     func() float64

	mu       sync.Mutex
	index    map[string]*entry // events owed, by id
	inflight map[string]bool   // ids this queue is attempting
	corrupt  map[string]bool   // unreadable pending records already reported
	held     map[string]string // events begun (Begin) whose locks are held, by id: their lock names
	wg       sync.WaitGroup    // attempts in flight

	// dead is the number of dead records below Prefix as last counted
	// (CountDead, at each scan), plus the events given up since.
	dead atomic.Int64
	// passive: opened for an operator (Open); Run does nothing.
	passive bool

	// Used by Run's goroutine only.
	nextScan, nextPurge time.Time
	purgeEach           bool // storage leaves a directory's keys on Delete
	purgeProbed         bool
}

// entry is what the queue remembers of an owed event.
type entry struct {
	due     time.Time
	expires time.Time // zero when the record could not be read yet
	fails   int       // consecutive tries that failed on storage
	// ended is a lease of this instance whose attempt has ended although
	// its record still shows it (the write after the attempt failed); the
	// next try need not wait for it.
	ended time.Time
	// outcome is a settled record (delivered, refused or dead) that could
	// not be written at outcomeKey when the app's answer decided it; the
	// next try writes it instead of sending the event again.
	outcome    *Event
	outcomeKey string
}

// New checks cfg and builds a Queue.
func New(cfg Config) (*Queue, error) {
	switch {
	case cfg.Storage == nil:
		return nil, errors.New("delivery: no storage")
	case cfg.Prefix == "" || strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/"):
		return nil, fmt.Errorf("delivery: prefix %q must be non-empty without a leading or trailing '/'", cfg.Prefix)
	case cfg.Instance == "":
		return nil, errors.New("delivery: no instance id")
	case cfg.Send == nil:
		return nil, errors.New("delivery: no send function")
	}
	q := &Queue{
		storage:  cfg.Storage,
		prefix:   cfg.Prefix,
		instance: cfg.Instance,
		now:      cfg.Now,
		logger:   cfg.Logger,
		send:     cfg.Send,
		retryFor: orDefault(cfg.RetryFor, DefaultRetryFor),
		lease:    orDefault(cfg.Lease, DefaultLease),
		keepDead: orDefault(cfg.KeepDead, DefaultKeepDead),
		observe:  cfg.Observe,
		onSettle: cfg.OnSettle,
		parallel: cfg.Parallel,
		tick:     orDefault(cfg.Tick, DefaultTick),
		rand:     rand.Float64,
		index:    map[string]*entry{},
		inflight: map[string]bool{},
		corrupt:  map[string]bool{},
		held:     map[string]string{},
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.logger == nil {
		q.logger = zap.NewNop()
	}
	if q.observe == nil {
		q.observe = func(string) {}
	}
	if q.onSettle == nil {
		q.onSettle = func(Event) {}
	}
	if q.parallel <= 0 {
		q.parallel = DefaultParallel
	}
	return q, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Owed reports how many events this queue knows to be owed to the app.
func (q *Queue) Owed() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.index)
}

// owe remembers that id is owed and due at due. A known expiry is kept.
func (q *Queue) owe(id string, due, expires time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.index[id]
	if e == nil {
		e = &entry{}
		q.index[id] = e
	}
	e.due, e.fails, e.ended = due, 0, time.Time{}
	if !expires.IsZero() {
		e.expires = expires
	}
}

// postpone moves a remembered event to due; it does not add one that was
// forgotten meanwhile (settled by this process), and keeps the count of
// storage failures, which only a recorded outcome resets.
func (q *Queue) postpone(id string, due, expires time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.index[id]; e != nil {
		e.due = due
		if !expires.IsZero() {
			e.expires = expires
		}
	}
}

// leaseEnded notes that the attempt under lease (this instance's) has
// ended although the stored record may still show the lease.
func (q *Queue) leaseEnded(id string, lease time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.index[id]; e != nil {
		e.ended = lease
	}
}

// forget drops a settled event.
func (q *Queue) forget(id string) {
	q.mu.Lock()
	delete(q.index, id)
	q.mu.Unlock()
}

// later keeps id owed after a failed try and backs off: the wait grows
// with the failures in a row, and is never shorter than the event's own
// backoff after attempts.
func (q *Queue) later(id string, expires time.Time, attempts int) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.index[id]
	if e == nil {
		e = &entry{}
		q.index[id] = e
	}
	if !expires.IsZero() {
		e.expires = expires
	}
	e.fails++
	e.due = q.now().Add(backoff(max(e.fails, attempts), q.rand()))
	return e.due
}

// unrecorded keeps rec, a settled record that could not be written at key,
// for the next try of its event (see entry.outcome).
func (q *Queue) unrecorded(rec *Event, key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.index[rec.ID]; e != nil {
		e.outcome, e.outcomeKey = rec, key
	}
}

// snapshot is a copy of id's entry (zero if none).
func (q *Queue) snapshot(id string) entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.index[id]; e != nil {
		return *e
	}
	return entry{}
}

// load reads and decodes the record at key for id.
func (q *Queue) load(ctx context.Context, key, id string, states ...State) (*Event, error) {
	b, err := q.storage.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	return decode(b, id, states...)
}

// store writes a record.
func (q *Queue) store(ctx context.Context, key string, ev *Event) error {
	b, err := encode(ev)
	if err != nil {
		return err
	}
	return q.storage.Store(ctx, key, b)
}

// unlock releases an event's lock, even when ctx has ended.
func (q *Queue) unlock(ctx context.Context, name, id string) {
	if err := q.storage.Unlock(context.WithoutCancel(ctx), name); err != nil {
		q.logger.Error("releasing an event lock failed", zap.String("id", id), zap.String("lock", name), zap.Error(err))
		q.observe(OutcomeStorageError)
	}
}

// notFound reports whether err means the key does not exist.
func notFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// storageFailed logs a failed storage operation on an owed event, counts
// it, and backs the event off.
func (q *Queue) storageFailed(msg, id string, expires time.Time, attempts int, err error) {
	due := q.later(id, expires, attempts)
	q.observe(OutcomeStorageError)
	q.logger.Error(msg, zap.String("id", id), zap.Time("retry_at", due), zap.Error(err))
}
