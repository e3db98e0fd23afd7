package caddyoss

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	util "github.com/alibabacloud-go/tea-utils/v2/service"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/credentials-go/credentials"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"go.uber.org/zap"
)

// stsCredentials are temporary credentials returned by AssumeRole.
type stsCredentials struct {
	AccessKeyID, AccessKeySecret, SecurityToken string
	Expiration                                  time.Time
	// source is where get found them: stsSourceCache or
	// stsSourceAssumeRole.
	source string
	// answer is the STS route's answer for these credentials, once a
	// request has built it; nil outside the broker's cache.
	answer *stsAnswer
}

// stsAnswer keeps the STS route's answer for one set of cached
// credentials. Without a callback the answer depends only on the
// credentials and the prefix, which the cache key (the session policy)
// fixes, so the first request to hand them out builds it and the next ones
// send the same bytes.
type stsAnswer struct{ body atomic.Pointer[[]byte] }

// get returns the kept answer, or nil.
func (a *stsAnswer) get() []byte {
	if a == nil {
		return nil
	}
	if b := a.body.Load(); b != nil {
		return *b
	}
	return nil
}

// keep keeps a copy of body.
func (a *stsAnswer) keep(body []byte) {
	if a != nil {
		b := bytes.Clone(body)
		a.body.Store(&b)
	}
}

// errSTSUnavailable is returned (wrapped) when STS failed and nothing valid
// is cached.
var errSTSUnavailable = errors.New("sts: temporary credentials unavailable")

// Timeouts of one AssumeRole call.
const (
	stsConnectTimeout = 3 * time.Second
	stsReadTimeout    = 10 * time.Second
	// stsSafetyMargin: a cached credential this close to expiry is no
	// longer handed out, even when STS is down.
	stsSafetyMargin = 30 * time.Second
)

// stsBroker calls AssumeRole through one STS client built at provision and
// caches the results per (session name, policy): fresh hits do no I/O,
// concurrent misses share one call, credentials are refreshed in the
// background RefreshBefore their expiry, and a still-valid credential is
// served while STS is failing.
type stsBroker struct {
	cfg    STSConfig
	logger *zap.Logger
	now    func() time.Time
	// connectTimeout and readTimeout bound one AssumeRole call; they are
	// read at each call, so tests can shorten them.
	connectTimeout, readTimeout time.Duration
	// assumeRole is the STS call; tests replace it.
	assumeRole func(ctx context.Context, session, policy string) (stsCredentials, error)

	mu       sync.Mutex
	entries  map[stsKey]*list.Element // values: *stsEntry
	lru      *list.List               // front: most recently used
	inflight map[stsKey]*stsCall
}

type stsKey struct{ session, policy string }

type stsEntry struct {
	key   stsKey
	creds stsCredentials
}

type stsCall struct {
	done  chan struct{}
	creds stsCredentials
	err   error
}

// newSTSBroker builds the broker and its STS client. cfg has its defaults
// applied; cred is the server's own credential.
func newSTSBroker(cfg STSConfig, region string, cred credentials.Credential, logger *zap.Logger) (*stsBroker, error) {
	protocol, host, err := stsEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	// An SDK client is not safe for concurrent calls (it keeps per-call
	// state in itself): one per lane, used only under the lane's lock.
	var clients [len(stsLanes)]*sts.Client
	for i := range clients {
		if clients[i], err = sts.NewClient(&openapi.Config{
			Credential:     cred,
			Endpoint:       tea.String(host),
			Protocol:       tea.String(protocol),
			RegionId:       tea.String(region),
			ConnectTimeout: tea.Int(int(stsConnectTimeout / time.Millisecond)),
			ReadTimeout:    tea.Int(int(stsReadTimeout / time.Millisecond)),
		}); err != nil {
			return nil, fmt.Errorf("sts client: %w", err)
		}
	}
	b := &stsBroker{
		cfg:            cfg,
		logger:         logger,
		now:            time.Now,
		connectTimeout: stsConnectTimeout,
		readTimeout:    stsReadTimeout,
		entries:        make(map[stsKey]*list.Element),
		lru:            list.New(),
		inflight:       make(map[stsKey]*stsCall),
	}
	b.assumeRole = func(_ context.Context, session, policy string) (stsCredentials, error) {
		req := &sts.AssumeRoleRequest{
			RoleArn:         tea.String(cfg.RoleARN),
			RoleSessionName: tea.String(session),
			DurationSeconds: tea.Int64(int64(time.Duration(cfg.Duration) / time.Second)),
			Policy:          tea.String(policy),
		}
		if cfg.ExternalID != "" {
			req.ExternalId = tea.String(cfg.ExternalID)
		}
		var resp *sts.AssumeRoleResponse
		var err error
		withSTSLane(func(lane int) {
			runtime := &util.RuntimeOptions{
				ConnectTimeout: tea.Int(int(b.connectTimeout / time.Millisecond)),
				ReadTimeout:    tea.Int(int(b.readTimeout/time.Millisecond) + lane),
				Autoretry:      tea.Bool(false),
			}
			resp, err = clients[lane].AssumeRoleWithOptions(req, runtime)
		})
		if err != nil {
			return stsCredentials{}, err
		}
		return parseAssumeRole(resp)
	}
	return b, nil
}

// stsEndpoint splits "host", "host:port" or "http(s)://host[:port]" into
// the SDK's protocol and endpoint.
func stsEndpoint(e string) (protocol, host string, err error) {
	if e == "" {
		return "", "", errors.New("sts endpoint is empty")
	}
	u, err := url.Parse(e)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		if u.Path != "" && u.Path != "/" {
			return "", "", fmt.Errorf("sts endpoint %q must not have a path", e)
		}
		return u.Scheme, u.Host, nil
	}
	return "https", e, nil
}

func parseAssumeRole(resp *sts.AssumeRoleResponse) (stsCredentials, error) {
	if resp == nil || resp.Body == nil || resp.Body.Credentials == nil {
		return stsCredentials{}, errors.New("AssumeRole returned no credentials")
	}
	c := resp.Body.Credentials
	exp, err := time.Parse(time.RFC3339, tea.StringValue(c.Expiration))
	if err != nil {
		return stsCredentials{}, fmt.Errorf("AssumeRole returned an invalid Expiration: %w", err)
	}
	out := stsCredentials{
		AccessKeyID:     tea.StringValue(c.AccessKeyId),
		AccessKeySecret: tea.StringValue(c.AccessKeySecret),
		SecurityToken:   tea.StringValue(c.SecurityToken),
		Expiration:      exp,
	}
	if out.AccessKeyID == "" || out.AccessKeySecret == "" || out.SecurityToken == "" {
		return stsCredentials{}, errors.New("AssumeRole returned incomplete credentials")
	}
	return out, nil
}

// get returns credentials for (session, policy).
func (b *stsBroker) get(ctx context.Context, session, policy string) (stsCredentials, error) {
	k := stsKey{session, policy}
	now := b.now()
	refreshBefore := time.Duration(b.cfg.RefreshBefore)

	b.mu.Lock()
	var cached *stsCredentials
	if el, ok := b.entries[k]; ok {
		b.lru.MoveToFront(el)
		e := el.Value.(*stsEntry)
		if now.Before(e.creds.Expiration.Add(-refreshBefore)) {
			b.mu.Unlock()
			ossMetrics.stsFromCache.Inc()
			c := e.creds
			c.source = stsSourceCache
			return c, nil
		}
		if now.Before(e.creds.Expiration.Add(-stsSafetyMargin)) {
			c := e.creds
			c.source = stsSourceCache
			cached = &c
		}
	}
	call, running := b.inflight[k]
	if !running {
		call = &stsCall{done: make(chan struct{})}
		b.inflight[k] = call
		go b.fetch(k, call)
	}
	b.mu.Unlock()

	// Refresh-ahead: a still-valid credential is served at once while the
	// refresh runs.
	if cached != nil {
		ossMetrics.stsFromCache.Inc()
		return *cached, nil
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return stsCredentials{}, ctx.Err()
	}
	if call.err != nil {
		return stsCredentials{}, fmt.Errorf("%w: %v", errSTSUnavailable, call.err)
	}
	c := call.creds
	c.source = stsSourceAssumeRole
	return c, nil
}

// fetch makes one AssumeRole call for k, detached from any one request so a
// client that goes away does not fail the others waiting on it.
func (b *stsBroker) fetch(k stsKey, call *stsCall) {
	ctx, cancel := context.WithTimeout(context.Background(), b.connectTimeout+b.readTimeout)
	defer cancel()
	creds, err := b.assumeRole(ctx, k.session, k.policy)
	if err != nil {
		// The SDK's error carries the signed request; only its summary
		// goes on, to the log and to the waiting callers.
		err = errors.New(stsErrorSummary(err))
	}

	if err == nil {
		creds.answer = new(stsAnswer)
		ossMetrics.stsCredentials.WithLabelValues(stsSourceAssumeRole).Inc()
	} else {
		ossMetrics.assumeRoleErrors.Inc()
	}

	b.mu.Lock()
	delete(b.inflight, k)
	if err == nil {
		b.store(k, creds)
	} else {
		_, hadEntry := b.entries[k]
		b.logger.Warn("AssumeRole failed",
			zap.String("role_arn", b.cfg.RoleARN),
			zap.String("session_name", k.session),
			zap.Bool("serving_cached", hadEntry),
			zap.String("error", err.Error()))
	}
	b.mu.Unlock()

	call.creds, call.err = creds, err
	close(call.done)
}

// store caches osssign.Credentials under k, evicting the least recently used entry when
// the cache is full. b.mu must be held.
func (b *stsBroker) store(k stsKey, creds stsCredentials) {
	if el, ok := b.entries[k]; ok {
		el.Value.(*stsEntry).creds = creds
		b.lru.MoveToFront(el)
		return
	}
	b.entries[k] = b.lru.PushFront(&stsEntry{key: k, creds: creds})
	for b.lru.Len() > max(b.cfg.CacheSize, 1) {
		oldest := b.lru.Back()
		b.lru.Remove(oldest)
		delete(b.entries, oldest.Value.(*stsEntry).key)
	}
}

// uploadPolicy is the inline session policy of the STS route: upload
// actions only, on the bucket below the prefix.
func uploadPolicy(bucket, prefix string) (string, error) {
	// The document json.Marshal would write for it (keys sorted), written
	// directly: this runs on every STS request, cache hits included.
	var buf [512]byte
	b := append(buf[:0], uploadPolicyHead...)
	b = append(b, `"acs:oss:*:*:`...)
	b = jsonw.AppendStringContent(b, bucket+"/") // a bucket name needs no escaping; checked at load
	b = jsonw.AppendStringContent(b, prefix)
	b = append(b, `*"`...)
	b = append(b, uploadPolicyTail...)
	if len(b) > 2048 {
		return "", fmt.Errorf("the STS session policy for prefix %q is longer than 2048 bytes", prefix)
	}
	return string(b), nil
}

const (
	uploadPolicyHead = `{"Statement":[{"Action":["oss:PutObject","oss:InitiateMultipartUpload","oss:UploadPart",` +
		`"oss:CompleteMultipartUpload","oss:AbortMultipartUpload","oss:ListParts"],"Effect":"Allow","Resource":[`
	uploadPolicyTail = `]}],"Version":"1"}`
)
