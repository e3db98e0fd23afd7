// Package ossemu is an in-memory emulator of Alibaba Cloud OSS and STS for
// tests and local development, in the spirit of fake-gcs-server, Azurite
// and LocalStack.
//
// It checks requests the way OSS does (header and URL signatures V1 and V4,
// PostObject policies V1 and V4, STS security tokens and session policies),
// stores objects in memory, sends upload callbacks signed with its own RSA
// key, and answers STS AssumeRole. Errors carry OSS's codes, statuses and
// XML shape, so client libraries see what they would see from OSS.
//
//	emu, err := ossemu.Start(ossemu.Options{
//		Buckets:    []string{"examplebucket"},
//		AccessKeys: map[string]string{"ak": "sk"},
//		Roles:      []ossemu.Role{{ARN: "acs:ram::1234567890123456:role/uploader"}},
//	})
//	defer emu.Close()
//	// OSS endpoint: emu.Endpoint(); STS endpoint: emu.STSEndpoint()
package ossemu

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure an emulator. The zero value is usable: one region, no
// buckets, no keys.
type Options struct {
	// Region is the region of every bucket, as V4 signatures scope it.
	// Default "cn-hangzhou".
	Region string
	// Buckets are created empty.
	Buckets []string
	// AccessKeys maps AccessKeyId to AccessKeySecret for the account's
	// permanent keys, which may sign OSS requests and call AssumeRole.
	AccessKeys map[string]string
	// Roles are the RAM roles AssumeRole may assume.
	Roles []Role
	// KeyActions limits permanent keys to the RAM actions listed
	// ("oss:PutObject", "sts:AssumeRole", "oss:*", ...), as for RAM users;
	// a key not listed may do anything. See SetKeyActions.
	KeyActions map[string][]string
	// CORS rules of every bucket. Nil means DefaultCORS().
	CORS []CORSRule
	// CallbackTimeout bounds each upload callback. Default 5s, OSS's fixed
	// value.
	CallbackTimeout time.Duration
	// RefusePrivateCallbacks makes callbacks fail, as real OSS's do, when
	// the callback URL's host is or resolves to a loopback, private,
	// link-local or unspecified address: the object is stored and the
	// uploader gets 203 CallbackFailed. Default false (the emulator calls
	// back to loopback, which is what tests on one machine need).
	RefusePrivateCallbacks bool
	// Now is the emulator's clock. Default time.Now.
	Now func() time.Time
	// Logf, when set, receives one line per request and per callback.
	Logf func(format string, args ...any)
}

// Role is a RAM role that AssumeRole can assume.
type Role struct {
	// ARN is acs:ram::<account-id>:role/<name>.
	ARN string
	// MaxSessionDuration is the longest DurationSeconds allowed. Default 1h;
	// OSS allows 1h to 12h.
	MaxSessionDuration time.Duration
	// Policy is the role's permission policy (RAM policy JSON). Empty allows
	// every OSS action, and AssumeRole by the role's sessions; a session
	// policy can only narrow it. A session calling AssumeRole with its own
	// credentials needs sts:AssumeRole on the target role's ARN
	// (acs:ram::<account-id>:role/<name>).
	Policy string
}

// Emulator is a running (or runnable) OSS + STS emulator. It is an
// http.Handler; Start and Listen serve it on a loopback port.
type Emulator struct {
	opts         Options
	region       string
	now          func() time.Time
	key          *rsa.PrivateKey
	pubPEM       []byte
	cors         []CORSRule
	callbacks    *http.Client // https without SNI, as OSS by default
	callbacksSNI *http.Client // https with SNI (callbackSNI: true)

	mu        sync.Mutex
	buckets   map[string]*bucket
	keys      map[string]string
	roles     map[string]*role
	sessions  map[string]*session // by temporary AccessKeyId
	nonces    map[string]time.Time
	stsCalls  int
	stsMode   STSMode
	stsDelay  time.Duration
	callLog   []CallbackRecord
	listener  net.Listener
	server    *http.Server
	serveDone chan struct{}

	// Under mu, see permissions.go and bucketconfig.go.
	keyActions map[string][]string
	bucketConf map[string]*bucketConf
}

// CallbackPublicKeyPath is where the emulator serves the PEM public key of
// its callback signatures; x-oss-pub-key-url points there.
const CallbackPublicKeyPath = "/ossemu/callback_pub_key.pem"

// New builds an emulator without listening; use it as an http.Handler or
// call Listen.
func New(opts Options) (*Emulator, error) {
	e := &Emulator{
		opts:     opts,
		region:   opts.Region,
		now:      opts.Now,
		cors:     opts.CORS,
		buckets:  map[string]*bucket{},
		keys:     map[string]string{},
		roles:    map[string]*role{},
		sessions: map[string]*session{},
		nonces:   map[string]time.Time{},

		keyActions: map[string][]string{},
		bucketConf: map[string]*bucketConf{},
	}
	for id, actions := range opts.KeyActions {
		e.keyActions[id] = append([]string{}, actions...)
	}
	if e.region == "" {
		e.region = "cn-hangzhou"
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.cors == nil {
		e.cors = DefaultCORS()
	}
	timeout := opts.CallbackTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	e.callbacks = callbackClient(timeout, false)
	e.callbacksSNI = callbackClient(timeout, true)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("ossemu: generating the callback key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ossemu: %w", err)
	}
	e.key = key
	e.pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, b := range opts.Buckets {
		if err := e.AddBucket(b); err != nil {
			return nil, err
		}
	}
	for id, secret := range opts.AccessKeys {
		e.AddAccessKey(id, secret)
	}
	for _, r := range opts.Roles {
		if err := e.AddRole(r); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Start builds an emulator and serves it on 127.0.0.1 at a free port.
func Start(opts Options) (*Emulator, error) {
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := e.Listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return e, nil
}

// Listen serves the emulator on addr (host:port; port 0 picks one) until
// Close.
func (e *Emulator) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ossemu: %w", err)
	}
	e.mu.Lock()
	if e.listener != nil {
		e.mu.Unlock()
		ln.Close()
		return errors.New("ossemu: already listening")
	}
	e.listener = ln
	e.server = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	e.serveDone = make(chan struct{})
	srv, done := e.server, e.serveDone
	e.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// Close stops serving and drops idle callback connections.
func (e *Emulator) Close() error {
	e.mu.Lock()
	srv, done := e.server, e.serveDone
	e.server, e.listener = nil, nil
	e.mu.Unlock()
	e.callbacks.CloseIdleConnections()
	e.callbacksSNI.CloseIdleConnections()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	return err
}

// Addr is the host:port the emulator listens on, e.g. 127.0.0.1:41234.
func (e *Emulator) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listener == nil {
		return ""
	}
	return e.listener.Addr().String()
}

// Port is the port the emulator listens on.
func (e *Emulator) Port() string {
	_, port, _ := net.SplitHostPort(e.Addr())
	return port
}

// Endpoint is the OSS endpoint URL for path-style clients,
// http://127.0.0.1:<port>.
func (e *Emulator) Endpoint() string { return "http://" + e.Addr() }

// BucketURL is the virtual-hosted URL of a bucket,
// http://<bucket>.localhost:<port>. Browsers resolve *.localhost to
// loopback; other clients may need a custom dialer or path-style.
func (e *Emulator) BucketURL(bucket string) string {
	return "http://" + bucket + ".localhost:" + e.Port()
}

// STSEndpoint is the URL of the STS AssumeRole endpoint (the same port as
// OSS; requests carrying Action are STS calls).
func (e *Emulator) STSEndpoint() string { return "http://" + e.Addr() }

// Region is the region of the emulator's buckets.
func (e *Emulator) Region() string { return e.region }

// CallbackPublicKeyPEM is the PEM public key that verifies the emulator's
// upload callbacks.
func (e *Emulator) CallbackPublicKeyPEM() []byte { return append([]byte(nil), e.pubPEM...) }

// AddBucket creates an empty bucket.
func (e *Emulator) AddBucket(name string) error {
	if !validBucketName(name) {
		return fmt.Errorf("ossemu: invalid bucket name %q (3-63 of a-z 0-9 -, not starting or ending with -)", name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.buckets[name] == nil {
		e.buckets[name] = newBucket(name)
	}
	return nil
}

// AddAccessKey adds a permanent access key of the account.
func (e *Emulator) AddAccessKey(id, secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys[id] = secret
}

// AddRole adds a RAM role AssumeRole can assume.
func (e *Emulator) AddRole(r Role) error {
	account, ok := parseRoleARN(r.ARN)
	if !ok {
		return fmt.Errorf("ossemu: role ARN %q is not acs:ram::<account-id>:role/<name>", r.ARN)
	}
	max := r.MaxSessionDuration
	if max == 0 {
		max = time.Hour
	}
	if max < time.Hour || max > 12*time.Hour {
		return fmt.Errorf("ossemu: role %s: MaxSessionDuration must be 1h to 12h", r.ARN)
	}
	var pol *ramPolicy
	if r.Policy != "" {
		p, err := parseRAMPolicy(r.Policy)
		if err != nil {
			return fmt.Errorf("ossemu: role %s policy: %w", r.ARN, err)
		}
		pol = p
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.roles[strings.ToLower(r.ARN)] = &role{arn: r.ARN, account: account, maxDuration: max, policy: pol}
	return nil
}

func validBucketName(s string) bool {
	if len(s) < 3 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

func (e *Emulator) logf(format string, args ...any) {
	if e.opts.Logf != nil {
		e.opts.Logf(format, args...)
	}
}

// callbackClient is how OSS reaches a callback server: no redirects, no
// certificate verification (OSS does not check the callback server's
// certificate), and a TLS server name only when sni is set. Without SNI a
// server that picks its certificate by name, such as Caddy, has none to
// offer, and the handshake fails as it does against OSS.
func callbackClient(timeout time.Duration, sni bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext: dialer.DialContext,
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				cfg := &tls.Config{InsecureSkipVerify: true} // OSS does not verify callback servers
				if host, _, err := net.SplitHostPort(addr); err == nil && sni && net.ParseIP(host) == nil {
					cfg.ServerName = host
				}
				tc := tls.Client(conn, cfg)
				if err := tc.HandshakeContext(ctx); err != nil {
					conn.Close()
					return nil, err
				}
				return tc, nil
			},
			DisableKeepAlives: true,
		},
	}
}
