package caddyoss

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Durable delivery (`delivery queued`): a verified callback is written to
// Caddy's storage before the upstream is called, and stays there until the
// upstream has taken it. Each instance keeps its own queue under its
// instance id and writes only its own keys, so the request path takes no
// storage lock; the queue of an instance that stopped beating is taken over
// by another under a storage lock, a rare event.
const (
	queuePrefix     = "oss_upload/queue"
	deadPrefix      = "oss_upload/dead"
	heartbeatPrefix = "oss_upload/instances"

	queueTick       = time.Second
	heartbeatEvery  = 5 * time.Second
	instanceTimeout = 20 * time.Second // four missed heartbeats
	takeoverEvery   = 5 * time.Second
	attemptTimeout  = 30 * time.Second
	backoffBase     = time.Second
	backoffMax      = 10 * time.Minute
	maxParallel     = 4
	queueStopWait   = 5 * time.Second
)

// queuedCallback is a verified callback waiting for the upstream.
type queuedCallback struct {
	ID         string      `json:"id"` // also the Idempotency-Key
	Server     string      `json:"server"`
	Method     string      `json:"method"`
	URI        string      `json:"uri"`
	Host       string      `json:"host"`
	RemoteAddr string      `json:"remote_addr"`
	Header     http.Header `json:"header"`
	Body       []byte      `json:"body"`
	Object     string      `json:"object,omitempty"`
	Created    time.Time   `json:"created"`
	Attempts   int         `json:"attempts"`
	NextAt     time.Time   `json:"next_at"`
}

// deliveriesInFlight holds the ids being delivered in this process, by any
// handler: after a reload the old handler's attempt may still be running
// when the new handler's queue sees the same record.
var deliveriesInFlight sync.Map

// deliveryCtxKey marks a request the queue sends through the server: the
// callback was verified when it arrived, and goes straight to the upstream.
// A client cannot set a context value.
type deliveryCtxKey struct{}

type deliveryQueue struct {
	h        *Handler
	storage  certmagic.Storage
	logger   *zap.Logger
	instance string
	app      func() (*caddyhttp.App, error)

	stop    context.CancelFunc
	stopped chan struct{}

	mu    sync.Mutex
	index map[string]time.Time // queued id → when it is due
}

func newDeliveryQueue(h *Handler, ctx caddy.Context) (*deliveryQueue, error) {
	id, err := caddy.InstanceID()
	if err != nil {
		return nil, fmt.Errorf("callback queue: instance id: %w", err)
	}
	return &deliveryQueue{
		h: h, storage: h.storage, logger: h.logger, instance: id.String(),
		index: map[string]time.Time{},
		app: func() (*caddyhttp.App, error) {
			a, err := ctx.AppIfConfigured("http")
			if err != nil {
				return nil, err
			}
			app, ok := a.(*caddyhttp.App)
			if !ok {
				return nil, errors.New("the http app is not caddyhttp.App")
			}
			return app, nil
		},
	}, nil
}

func (q *deliveryQueue) key(instance, id string) string {
	return queuePrefix + "/" + instance + "/" + id
}

// put persists a callback in this instance's queue, due now.
func (q *deliveryQueue) put(ctx context.Context, c *queuedCallback) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := q.storage.Store(ctx, q.key(q.instance, c.ID), b); err != nil {
		return err
	}
	q.track(c.ID, c.NextAt)
	return nil
}

func (q *deliveryQueue) track(id string, due time.Time) {
	q.mu.Lock()
	if _, ok := q.index[id]; !ok {
		ossMetrics.callbackQueueSize.Inc()
	}
	q.index[id] = due
	q.mu.Unlock()
}

func (q *deliveryQueue) untrack(id string) {
	q.mu.Lock()
	if _, ok := q.index[id]; ok {
		delete(q.index, id)
		ossMetrics.callbackQueueSize.Dec()
	}
	q.mu.Unlock()
}

// done removes a delivered (or dead) callback from the queue.
func (q *deliveryQueue) done(ctx context.Context, id string) {
	if err := q.storage.Delete(ctx, q.key(q.instance, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.logger.Error("removing a delivered callback from the queue failed", zap.String("id", id), zap.Error(err))
	}
	q.untrack(id)
}

// run delivers what is due until ctx ends (a config unload or shutdown).
func (q *deliveryQueue) run(ctx context.Context) {
	defer func() {
		q.mu.Lock()
		ossMetrics.callbackQueueSize.Sub(float64(len(q.index)))
		q.index = map[string]time.Time{}
		q.mu.Unlock()
	}()
	q.load(ctx, q.instance)
	q.beat(ctx)
	tick := time.NewTicker(queueTick)
	defer tick.Stop()
	lastBeat, lastTakeover := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(lastBeat) >= heartbeatEvery {
			q.beat(ctx)
			lastBeat = time.Now()
		}
		if time.Since(lastTakeover) >= takeoverEvery {
			q.takeOver(ctx)
			lastTakeover = time.Now()
		}
		q.deliverDue(ctx)
	}
}

// load reads an instance's queue into the index.
func (q *deliveryQueue) load(ctx context.Context, instance string) {
	keys, err := q.storage.List(ctx, queuePrefix+"/"+instance, false)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			q.logger.Error("reading the callback queue failed", zap.Error(err))
		}
		return
	}
	for _, k := range keys {
		if c, err := q.read(ctx, k); err == nil {
			q.track(c.ID, c.NextAt)
		}
	}
}

func (q *deliveryQueue) read(ctx context.Context, key string) (*queuedCallback, error) {
	b, err := q.storage.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	c := new(queuedCallback)
	if err := json.Unmarshal(b, c); err != nil || c.ID == "" || c.ID != path.Base(key) {
		return nil, fmt.Errorf("%s is not a queued callback", key)
	}
	return c, nil
}

// beat tells the other instances this one is alive.
func (q *deliveryQueue) beat(ctx context.Context) {
	now := strconv.FormatInt(time.Now().Unix(), 10)
	if err := q.storage.Store(ctx, heartbeatPrefix+"/"+q.instance, []byte(now)); err != nil {
		q.logger.Warn("writing the instance heartbeat failed", zap.Error(err))
	}
}

// takeOver moves the queues of instances that stopped beating into this
// one's, each under a storage lock so that only one instance takes it.
func (q *deliveryQueue) takeOver(ctx context.Context) {
	instances, err := q.storage.List(ctx, queuePrefix, false)
	if err != nil {
		return
	}
	for _, dir := range instances {
		other := path.Base(dir)
		if other == q.instance || !q.gone(ctx, other) {
			continue
		}
		lock := "oss_upload_queue_" + other
		if err := q.storage.Lock(ctx, lock); err != nil {
			continue
		}
		keys, _ := q.storage.List(ctx, queuePrefix+"/"+other, false)
		moved := 0
		for _, k := range keys {
			c, err := q.read(ctx, k)
			if err != nil {
				continue
			}
			c.NextAt = time.Now()
			if q.put(ctx, c) == nil && q.storage.Delete(ctx, k) == nil {
				moved++
			}
		}
		_ = q.storage.Unlock(context.WithoutCancel(ctx), lock)
		if moved > 0 {
			q.logger.Info("callback queue taken over from a stopped instance",
				zap.String("instance", other), zap.Int("callbacks", moved))
		}
	}
}

// gone reports whether an instance's heartbeat is missing or stale.
func (q *deliveryQueue) gone(ctx context.Context, instance string) bool {
	b, err := q.storage.Load(ctx, heartbeatPrefix+"/"+instance)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return err == nil && time.Since(time.Unix(t, 0)) > instanceTimeout
}

// deliverDue starts a delivery for each due callback, a few at a time.
func (q *deliveryQueue) deliverDue(ctx context.Context) {
	now := time.Now()
	var due []string
	q.mu.Lock()
	for id, at := range q.index {
		if !at.After(now) {
			due = append(due, id)
		}
	}
	q.mu.Unlock()
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for _, id := range due {
		if _, busy := deliveriesInFlight.LoadOrStore(id, true); busy {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { deliveriesInFlight.Delete(id); <-sem; wg.Done() }()
			q.retry(ctx, id)
		}()
	}
	wg.Wait()
}

// retry makes one more attempt at a queued callback, through the server
// and the route the site configured.
func (q *deliveryQueue) retry(ctx context.Context, id string) {
	c, err := q.read(ctx, q.key(q.instance, id))
	if err != nil {
		q.untrack(id) // delivered meanwhile, or taken over
		return
	}
	ossMetrics.deliveries.WithLabelValues(deliveryRetried).Inc()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptTimeout)
	defer cancel()
	status, err := q.send(actx, c)
	if err == nil && status != 0 && status < http.StatusInternalServerError {
		q.done(actx, id)
		ossMetrics.deliveries.WithLabelValues(deliveryDelivered).Inc()
		q.logger.Info("queued callback delivered", zap.String("id", id), zap.String("object", c.Object),
			zap.Int("attempts", c.Attempts+1), zap.Int("status", status))
		return
	}
	c.Attempts++
	if time.Since(c.Created) > time.Duration(q.h.Callback.RetryFor) {
		q.bury(actx, c, status, err)
		return
	}
	c.NextAt = time.Now().Add(backoff(c.Attempts))
	if err := q.put(actx, c); err != nil {
		q.logger.Error("rescheduling a queued callback failed", zap.String("id", id), zap.Error(err))
	}
}

// bury keeps a callback that could not be delivered within retry_for, for
// inspection, out of the queue.
func (q *deliveryQueue) bury(ctx context.Context, c *queuedCallback, status int, err error) {
	b, _ := json.Marshal(c)
	if serr := q.storage.Store(ctx, deadPrefix+"/"+c.ID, b); serr != nil {
		q.logger.Error("keeping an undeliverable callback failed", zap.String("id", c.ID), zap.Error(serr))
		return
	}
	q.done(ctx, c.ID)
	ossMetrics.deliveries.WithLabelValues(deliveryFailed).Inc()
	fields := []zap.Field{zap.String("id", c.ID), zap.String("object", c.Object), zap.Int("attempts", c.Attempts),
		zap.Int("status", status), zap.String("kept_at", deadPrefix+"/"+c.ID)}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	q.logger.Error("callback not delivered within retry_for, kept as dead", fields...)
}

// send passes a queued callback to the server it arrived on, as the
// request OSS sent; the callback route recognizes it by its context and
// forwards it to the upstream.
func (q *deliveryQueue) send(ctx context.Context, c *queuedCallback) (int, error) {
	app, err := q.app()
	if err != nil {
		return 0, err
	}
	srv := app.Servers[c.Server]
	if srv == nil {
		return 0, fmt.Errorf("server %q is not in the configuration", c.Server)
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, deliveryCtxKey{}, c), c.Method, c.URI, bytes.NewReader(c.Body))
	if err != nil {
		return 0, err
	}
	req.RequestURI, req.Host, req.RemoteAddr = c.URI, c.Host, c.RemoteAddr
	req.Header = c.Header.Clone()
	req.ContentLength = int64(len(c.Body))
	rec := newAnswerRecorder()
	srv.ServeHTTP(rec, req)
	return rec.status, nil
}

// backoff is the wait before attempt n+1: exponential, capped, with ±20 %
// jitter so that callbacks queued together do not retry together.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 20 {
		d = min(backoffBase<<n, backoffMax)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Interface guard: the recorder is what srv.ServeHTTP writes to.
var _ http.ResponseWriter = (*answerRecorder)(nil)
