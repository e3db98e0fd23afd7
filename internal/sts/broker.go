// Package sts is the STS route's AssumeRole broker, with no Caddy and no
// HTTP server types: STS SDK clients that each run one call at a time, a
// cache of temporary credentials per (session name, session policy) with
// a bound on its size, one call for concurrent misses, refresh ahead of
// expiry, and credentials still valid served while STS fails. It also
// holds the upload session policy and the summary of AssumeRole errors
// that is safe to log.
package sts

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	stsapi "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/aliyun/credentials-go/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// Config says how to call AssumeRole and how long to keep its answers.
// New fills in the defaults of zero fields.
type Config struct {
	// RoleARN is the RAM role to assume; STS refuses a call without it.
	RoleARN string

	// ExternalID is passed to AssumeRole when set. Default: none.
	ExternalID string

	// Duration is the lifetime asked for issued credentials, in whole
	// seconds; STS accepts 15m..12h. Default: 1h.
	Duration time.Duration

	// RefreshBefore is how long before expiry cached credentials are
	// refreshed in the background. Default: 5m.
	RefreshBefore time.Duration

	// CacheSize bounds the number of cached credentials; the least
	// recently used go first. Default: 1024.
	CacheSize int

	// Endpoint is the STS host, host:port or http(s)://host[:port].
	// Default: sts.<region>.aliyuncs.com.
	Endpoint string
}

// DefaultDuration is Config.Duration's default.
const DefaultDuration = time.Hour

// Defaults of Config and of a Broker's test fields.
const (
	defaultRefreshBefore  = 5 * time.Minute
	defaultCacheSize      = 1024
	defaultConnectTimeout = 3 * time.Second
	defaultReadTimeout    = 10 * time.Second
)

// safetyMargin: a cached credential this close to expiry is no longer
// handed out, even when STS is down.
const safetyMargin = 30 * time.Second

// Where Get found credentials (Issued.Source): the label values of the
// source of caddy_oss_sts_credentials_total.
const (
	SourceCache      = "cache"
	SourceAssumeRole = "assume_role"
)

// ErrUnavailable is returned (wrapped, with the summary of STS's error)
// when AssumeRole failed and nothing valid is cached.
var ErrUnavailable = errors.New("sts: temporary credentials unavailable")

// Issued is what Get returns: temporary credentials, where Get found them,
// and the answer kept with them while they are cached.
type Issued struct {
	osssign.Credentials
	// Source is SourceCache or SourceAssumeRole.
	Source string
	// Answer is the answer kept with these credentials while they are
	// cached; never nil from Get.
	Answer *Answer
}

// Answer keeps a caller's answer built from one set of cached credentials
// (the STS route's JSON), so that the requests that get the same
// credentials after it send the same bytes without building them. It goes
// with the credentials when they are refreshed or evicted. Its methods
// are safe for concurrent use and on a nil Answer.
type Answer struct{ body atomic.Pointer[[]byte] }

// Bytes returns the kept answer, or nil.
func (a *Answer) Bytes() []byte {
	if a == nil {
		return nil
	}
	if b := a.body.Load(); b != nil {
		return *b
	}
	return nil
}

// Keep keeps a copy of body.
func (a *Answer) Keep(body []byte) {
	if a != nil {
		b := bytes.Clone(body)
		a.body.Store(&b)
	}
}

// Metrics are the counters a Broker increments; a nil one is not counted.
type Metrics struct {
	// FromCache counts the credentials Get served from the cache.
	FromCache prometheus.Counter
	// FromAssumeRole counts Get's AssumeRole calls (misses and
	// refreshes) that returned credentials.
	FromAssumeRole prometheus.Counter
	// AssumeRoleErrors counts Get's AssumeRole calls that failed.
	AssumeRoleErrors prometheus.Counter
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// Broker calls AssumeRole through STS clients built by New and caches the
// results per (session name, policy): fresh hits do no I/O, concurrent
// misses share one call, credentials are refreshed in the background
// RefreshBefore their expiry, and a still-valid credential is served while
// STS is failing. It is safe for concurrent use.
//
// Its exported fields are for tests: New sets them, and a test may change
// them before the first Get or AssumeRole, not after.
type Broker struct {
	// Now is the clock that decides whether cached credentials are fresh.
	// Default: time.Now.
	Now func() time.Time
	// ConnectTimeout and ReadTimeout bound one AssumeRole call. Defaults:
	// 3s and 10s.
	ConnectTimeout, ReadTimeout time.Duration
	// Call is the call a cache miss or refresh makes. Default:
	// AssumeRole; a test may wrap it to see the SDK's errors before they
	// are summarized, or replace it.
	Call func(ctx context.Context, session, policy string) (osssign.Credentials, error)

	cfg     Config
	logger  *zap.Logger
	metrics Metrics
	clients [len(lanes)]*stsapi.Client

	mu       sync.Mutex
	entries  map[key]*list.Element // values: *entry
	lru      *list.List            // front: most recently used
	inflight map[key]*call
}

type key struct{ session, policy string }

type entry struct {
	key    key
	issued Issued
}

type call struct {
	done   chan struct{}
	issued Issued
	err    error
}

// New builds a broker and its STS clients. region is the STS client's
// region, cred the server's own credential, and m the counters it
// increments.
func New(cfg Config, region string, cred credentials.Credential, logger *zap.Logger, m Metrics) (*Broker, error) {
	cfg = cfg.WithDefaults(region)
	clients, err := newClients(cfg.Endpoint, region, cred)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		Now:            time.Now,
		ConnectTimeout: defaultConnectTimeout,
		ReadTimeout:    defaultReadTimeout,
		cfg:            cfg,
		logger:         logger,
		metrics:        m,
		clients:        clients,
		entries:        make(map[key]*list.Element),
		lru:            list.New(),
		inflight:       make(map[key]*call),
	}
	b.Call = b.AssumeRole
	return b, nil
}

// WithDefaults returns c with the defaults of its zero fields, the
// endpoint the region's.
func (c Config) WithDefaults(region string) Config {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.RefreshBefore == 0 {
		c.RefreshBefore = defaultRefreshBefore
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.Endpoint == "" && region != "" {
		c.Endpoint = "sts." + region + ".aliyuncs.com"
	}
	return c
}

// Get returns credentials for (session, policy). When AssumeRole fails
// and nothing valid is cached, the error wraps ErrUnavailable; when ctx
// ends first, it is ctx's error.
func (b *Broker) Get(ctx context.Context, session, policy string) (Issued, error) {
	k := key{session, policy}
	now := b.Now()

	b.mu.Lock()
	var cached *Issued
	if el, ok := b.entries[k]; ok {
		b.lru.MoveToFront(el)
		e := el.Value.(*entry)
		if now.Before(e.issued.Expiration.Add(-b.cfg.RefreshBefore)) {
			b.mu.Unlock()
			inc(b.metrics.FromCache)
			c := e.issued
			c.Source = SourceCache
			return c, nil
		}
		if now.Before(e.issued.Expiration.Add(-safetyMargin)) {
			c := e.issued
			c.Source = SourceCache
			cached = &c
		}
	}
	c, running := b.inflight[k]
	if !running {
		c = &call{done: make(chan struct{})}
		b.inflight[k] = c
		go b.fetch(k, c)
	}
	b.mu.Unlock()

	// Refresh-ahead: a still-valid credential is served at once while the
	// refresh runs.
	if cached != nil {
		inc(b.metrics.FromCache)
		return *cached, nil
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return Issued{}, ctx.Err()
	}
	if c.err != nil {
		return Issued{}, fmt.Errorf("%w: %v", ErrUnavailable, c.err)
	}
	issued := c.issued
	issued.Source = SourceAssumeRole
	return issued, nil
}

// fetch makes one call for k, detached from any one request so a client
// that goes away does not fail the others waiting on it.
func (b *Broker) fetch(k key, c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), b.ConnectTimeout+b.ReadTimeout)
	defer cancel()
	var issued Issued
	creds, err := b.Call(ctx, k.session, k.policy)
	if err != nil {
		// The SDK's error carries the signed request; only its summary
		// goes on, to the log and to the waiting callers.
		err = errors.New(ErrorSummary(err))
	}

	if err == nil {
		issued = Issued{Credentials: creds, Answer: new(Answer)}
		inc(b.metrics.FromAssumeRole)
	} else {
		inc(b.metrics.AssumeRoleErrors)
	}

	b.mu.Lock()
	delete(b.inflight, k)
	if err == nil {
		b.store(k, issued)
	} else {
		_, hadEntry := b.entries[k]
		b.logger.Warn("AssumeRole failed",
			zap.String("role_arn", b.cfg.RoleARN),
			zap.String("session_name", k.session),
			zap.Bool("serving_cached", hadEntry),
			zap.String("error", err.Error()))
	}
	b.mu.Unlock()

	c.issued, c.err = issued, err
	close(c.done)
}

// store caches issued under k, evicting the least recently used entry
// when the cache is full. b.mu must be held.
func (b *Broker) store(k key, issued Issued) {
	if el, ok := b.entries[k]; ok {
		el.Value.(*entry).issued = issued
		b.lru.MoveToFront(el)
		return
	}
	b.entries[k] = b.lru.PushFront(&entry{key: k, issued: issued})
	for b.lru.Len() > max(b.cfg.CacheSize, 1) {
		oldest := b.lru.Back()
		b.lru.Remove(oldest)
		delete(b.entries, oldest.Value.(*entry).key)
	}
}

// Idle reports whether no call that Get started is in flight; tests wait
// with it for a background refresh to end.
func (b *Broker) Idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.inflight) == 0
}
