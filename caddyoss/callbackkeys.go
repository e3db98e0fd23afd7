package caddyoss

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/redact"
)

// alibabaCallbackKeyPEM is https://gosspublic.alicdn.com/callback_pub_key_v1.pem,
// the key OSS signs upload callbacks with, pinned so verification needs no
// network. It is 512-bit RSA.
const alibabaCallbackKeyPEM = `-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKs/JBGzwUB2aVht4crBx3oIPBLNsjGs
C0fTXv+nvlmklvkcolvpvXLTjaxUHR3W9LXxQ2EHXAJfCB+6H2YF1k8CAwEAAQ==
-----END PUBLIC KEY-----
`

const (
	// alibabaKeyHost is the only host whose keys are fetched.
	alibabaKeyHost = "gosspublic.alicdn.com"
	// alibabaKeyPath is the path of the pinned key.
	alibabaKeyPath = "/callback_pub_key_v1.pem"

	keyFetchTimeout = 5 * time.Second
	maxPubKeyBytes  = 16 << 10
	maxFetchedKeys  = 16

	// keyFetchRetryAfter is how long a failed fetch is remembered, per URL.
	// Key URLs come from unauthenticated callbacks: without it every
	// callback naming a failing URL would make Caddy fetch it again.
	keyFetchRetryAfter = time.Minute
)

// alibabaKeyFile is the name Alibaba gives its callback keys
// (callback_pub_key_v1.pem). Only such names are fetched: there are at
// most 9999 of them, so the failures remembered per URL are bounded, and
// no count of failing URLs an attacker can fill keeps a new key of
// Alibaba's out.
var alibabaKeyFile = regexp.MustCompile(`^/callback_pub_key_v[1-9][0-9]{0,3}\.pem$`)

var pinnedAlibabaKey = func() *rsa.PublicKey {
	k, err := parseRSAPublicKeyPEM([]byte(alibabaCallbackKeyPEM))
	if err != nil {
		panic(err)
	}
	return k
}()

// callbackVerifier decides which public key may sign a callback: Alibaba's
// keys (pinned, or fetched once from gosspublic.alicdn.com) and the keys the
// operator configured. Nothing else is trusted.
type callbackVerifier struct {
	trusted []*rsa.PublicKey
	// client fetches keys; tests point its Transport at a local server.
	client *http.Client
	logger *zap.Logger
	now    func() time.Time

	mu       sync.Mutex
	fetched  map[string]*rsa.PublicKey
	failed   map[string]keyFailure
	inflight map[string]*keyFetch
}

type keyFetch struct {
	done chan struct{}
	key  *rsa.PublicKey
	err  error
}

// keyFailure is a failed fetch, answered from memory until retryAt.
type keyFailure struct {
	err     error
	retryAt time.Time
}

// newCallbackVerifier parses the trusted key files once.
func newCallbackVerifier(trustedKeyFiles []string, logger *zap.Logger) (*callbackVerifier, error) {
	v := &callbackVerifier{
		client:   &http.Client{Timeout: keyFetchTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		logger:   logger,
		now:      time.Now,
		fetched:  make(map[string]*rsa.PublicKey),
		failed:   make(map[string]keyFailure),
		inflight: make(map[string]*keyFetch),
	}
	for _, f := range trustedKeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("callback trusted_key: %w", err)
		}
		k, err := parseRSAPublicKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("callback trusted_key %s: %w", f, err)
		}
		v.trusted = append(v.trusted, k)
	}
	return v, nil
}

func (v *callbackVerifier) cleanup() { v.client.CloseIdleConnections() }

// parseRSAPublicKeyPEM accepts a PKIX ("PUBLIC KEY") or PKCS#1
// ("RSA PUBLIC KEY") RSA public key.
func parseRSAPublicKeyPEM(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
}

// errUntrustedKey means the callback names a key URL nobody configured.
var errUntrustedKey = errors.New("callback public key URL is not trusted")

// alibabaKeyURL parses a decoded x-oss-pub-key-url and reports whether it
// is on gosspublic.alicdn.com (exactly: http or https, no user info, no
// port, nothing encoded in the host).
func alibabaKeyURL(raw string) (*url.URL, bool) {
	if strings.ContainsAny(raw, "\\\x00\r\n\t ") {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil ||
		u.Opaque != "" || u.Host != alibabaKeyHost || u.Port() != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, false
	}
	return u, true
}

// keysFor returns the keys that may have signed a callback carrying the
// given x-oss-pub-key-url (base64).
func (v *callbackVerifier) keysFor(ctx context.Context, pubKeyURLB64 string) ([]*rsa.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(pubKeyURLB64)
	if err != nil {
		return nil, callbackErr(http.StatusBadRequest, reasonHeaders, "x-oss-pub-key-url is not valid base64")
	}
	u, ok := alibabaKeyURL(string(raw))
	if !ok {
		if len(v.trusted) == 0 {
			return nil, callbackErr(http.StatusForbidden, reasonUntrustedKey, untrustedKeyMessage(string(raw)))
		}
		return v.trusted, nil
	}
	if u.Path == alibabaKeyPath && u.RawQuery == "" {
		return []*rsa.PublicKey{pinnedAlibabaKey}, nil
	}
	if !alibabaKeyFile.MatchString(u.Path) {
		return nil, callbackErr(http.StatusForbidden, reasonUntrustedKey, "callback public key URL names a file on "+alibabaKeyHost+" that is not a callback key (callback_pub_key_v<n>.pem)")
	}
	// The query is dropped: it is not part of the key's identity, and
	// whatever the sender put there stays out of requests and logs.
	k, err := v.fetch(ctx, "https://"+alibabaKeyHost+u.EscapedPath())
	if err != nil {
		return nil, callbackErr(http.StatusForbidden, reasonKeyFetch, "callback public key could not be fetched")
	}
	return []*rsa.PublicKey{k}, nil
}

// fetch gets a key from gosspublic.alicdn.com: concurrent callers share one
// fetch, a key is cached and a failure is remembered for
// keyFetchRetryAfter.
func (v *callbackVerifier) fetch(ctx context.Context, keyURL string) (*rsa.PublicKey, error) {
	v.mu.Lock()
	k, f, err := v.lookup(keyURL)
	v.mu.Unlock()
	if f == nil {
		return k, err
	}
	select {
	case <-f.done:
		return f.key, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lookup answers keyURL from memory, or returns the fetch to wait for,
// starting it if none runs. v.mu must be held.
func (v *callbackVerifier) lookup(keyURL string) (*rsa.PublicKey, *keyFetch, error) {
	if k, ok := v.fetched[keyURL]; ok {
		return k, nil, nil
	}
	v.forgetFailures(v.now())
	if fail, ok := v.failed[keyURL]; ok {
		return nil, nil, fail.err
	}
	if f, ok := v.inflight[keyURL]; ok {
		return nil, f, nil
	}
	f := &keyFetch{done: make(chan struct{})}
	v.inflight[keyURL] = f
	go v.runFetch(keyURL, f)
	return nil, f, nil
}

// forgetFailures drops the failures whose retry time has come. v.mu must
// be held.
func (v *callbackVerifier) forgetFailures(now time.Time) {
	for u, fail := range v.failed {
		if !now.Before(fail.retryAt) {
			delete(v.failed, u)
		}
	}
}

// runFetch downloads keyURL, records the outcome and wakes the waiters.
// It is detached from any one callback so one that goes away does not fail
// the others.
func (v *callbackVerifier) runFetch(keyURL string, f *keyFetch) {
	k, err := v.download(keyURL)
	v.mu.Lock()
	delete(v.inflight, keyURL)
	if err == nil {
		if len(v.fetched) >= maxFetchedKeys {
			clear(v.fetched)
		}
		v.fetched[keyURL] = k
	} else {
		v.failed[keyURL] = keyFailure{err: err, retryAt: v.now().Add(keyFetchRetryAfter)}
	}
	v.mu.Unlock()
	if err != nil {
		// Logged once per fetch, not per callback: callers cannot make
		// the log grow faster than the fetches.
		v.logger.Warn("fetching callback public key failed",
			zap.String("url", redact.URL(keyURL)),
			zap.String("error", redact.Error(err)),
			zap.Duration("retry_after", keyFetchRetryAfter))
	}
	f.key, f.err = k, err
	close(f.done)
}

func (v *callbackVerifier) download(keyURL string) (*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), keyFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, keyURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPubKeyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPubKeyBytes {
		return nil, fmt.Errorf("key larger than %d bytes", maxPubKeyBytes)
	}
	return parseRSAPublicKeyPEM(b)
}
