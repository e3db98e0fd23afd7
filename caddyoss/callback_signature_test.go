package caddyoss

// Verifying callback signatures: trusted_key files, RSA key sizes, keys
// fetched from Alibaba's host, and fuzzed requests.

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// signCallback signs a callback as OSS does, with crypto/rsa.
func signCallback(t testing.TB, key *rsa.PrivateKey, uri, body string) string {
	msg, err := callback.StringToSign(uri, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.MD5, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func writeKeyPEM(t testing.TB, key *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCallbackTrustedKey(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	h := callbackHandler(t, writeKeyPEM(t, key))
	emuURL := base64.StdEncoding.EncodeToString([]byte("http://127.0.0.1:9/ossemu/callback_pub_key.pem"))
	for _, tc := range []struct {
		name   string
		signer *rsa.PrivateKey
		uri    string
		status int
	}{
		{"trusted key", key, "/index.php?a=%2F&b=c+d", 200},
		{"encoded path", key, "/index%2Ephp", 200},
		{"untrusted key", other, "/index.php", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"bucket":"yonghu-test","object":"a/` + tc.name + `.png","size":1234567,"etag":"E"}`
			r := httptest.NewRequest("POST", tc.uri, strings.NewReader(body))
			r.Header.Set("Authorization", signCallback(t, tc.signer, tc.uri, body))
			r.Header.Set("X-Oss-Pub-Key-Url", emuURL)
			r.Header.Set("Content-Type", "application/json")
			r = withReplacer(r)
			h.CallbackPath = r.URL.Path
			rec, rc := runCallback(t, h, r)
			if rec.Code != tc.status || rc.called != (tc.status == 200) {
				t.Fatalf("status %d called %v: %s", rec.Code, rc.called, rec.Body)
			}
			if tc.status == 200 {
				if v, _ := replacer(r).GetString("http.oss_upload.callback.size"); v != "1234567" {
					t.Errorf("size placeholder %q", v)
				}
			}
		})
	}
	// Without trusted keys, a non-Alibaba key URL is refused outright.
	h2 := callbackHandler(t)
	r := e1Request(func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", emuURL) })
	if rec, rc := runCallback(t, h2, r); rec.Code != 403 || rc.called {
		t.Errorf("untrusted URL: %d", rec.Code)
	}
}

func TestVerifyPKCS1v15MD5Sizes(t *testing.T) {
	// 512 bits: the genuine E1 signature with Alibaba's key.
	msg, _ := callback.StringToSign(e1Path, []byte(e1Body))
	sig, _ := base64.StdEncoding.DecodeString(e1Sig)
	if err := callback.VerifyMD5(pinnedAlibabaKey, msg, sig); err != nil {
		t.Errorf("E1: %v", err)
	}
	if pinnedAlibabaKey.N.BitLen() != 512 {
		t.Errorf("pinned key has %d bits", pinnedAlibabaKey.N.BitLen())
	}
	// 2048 bits, signed by crypto/rsa.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	sum := md5.Sum([]byte("hello"))
	s, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.MD5, sum[:])
	if err := callback.VerifyMD5(&key.PublicKey, []byte("hello"), s); err != nil {
		t.Errorf("2048: %v", err)
	}
	if err := callback.VerifyMD5(&key.PublicKey, []byte("hellO"), s); err == nil {
		t.Error("2048: wrong message accepted")
	}
	// s >= n is refused.
	big := key.PublicKey.N.FillBytes(make([]byte, 256))
	if err := callback.VerifyMD5(&key.PublicKey, []byte("hello"), big); err == nil {
		t.Error("s = n accepted")
	}
}

// Keys at other gosspublic paths are fetched once and cached.
func TestCallbackKeyFetch(t *testing.T) {
	var fetches atomic.Int64
	body := alibabaCallbackKeyPEM
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fetches.Add(1)
		if r.URL.Host != alibabaKeyHost || r.URL.Scheme != "https" {
			t.Errorf("fetched %s", r.URL)
		}
		b := body
		if r.URL.Path == "/callback_pub_key_v4.pem" {
			b = strings.Repeat("x", maxPubKeyBytes+1)
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(b)), Header: http.Header{}}, nil
	})
	h := callbackHandler(t)
	h.callback.verifier.client.Transport = rt
	otherPath := base64.StdEncoding.EncodeToString([]byte("http://gosspublic.alicdn.com/callback_pub_key_v3.pem"))
	for i := 0; i < 3; i++ {
		// The same genuine callback: the first is forwarded, the copies are
		// answered without reaching the app.
		rec, rc := runCallback(t, h, e1Request(func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", otherPath) }))
		if rec.Code != 200 || rc.called != (i == 0) {
			t.Fatalf("copy %d: status %d called %v", i, rec.Code, rc.called)
		}
	}
	if fetches.Load() != 1 {
		t.Errorf("fetched %d times", fetches.Load())
	}
	bigPath := base64.StdEncoding.EncodeToString([]byte("https://gosspublic.alicdn.com/callback_pub_key_v4.pem"))
	if rec, rc := runCallback(t, h, e1Request(func(r *http.Request, _ *string) { r.Header.Set("X-Oss-Pub-Key-Url", bigPath) })); rec.Code != 403 || rc.called {
		t.Errorf("oversized key: %d", rec.Code)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func FuzzCallbackVerify(f *testing.F) {
	f.Add(e1Path, e1Body, e1Sig, e1Key, "")
	f.Add("/index.php?id=1&index=2", "bucket=yonghu-test", e1Sig, e1KeyHTTP, "")
	f.Add("/%zz", "", "", "", "x")
	h := testHandler(f, func(h *Handler) {
		h.CallbackPath = "/index.php"
		h.Callback = &CallbackConfig{MaxBody: 4096, VerifyOnly: true}
	})
	h.logger = zap.NewNop()
	v, err := newCallbackVerifier(nil, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	v.client.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 404, Body: http.NoBody, Header: http.Header{}}, nil
	})
	h.callback.verifier = v
	f.Fuzz(func(t *testing.T, uri, body, sig, keyURL, md5h string) {
		if !strings.HasPrefix(uri, "/") {
			uri = "/" + uri
		}
		r, err := http.NewRequest("POST", "http://x"+uri, bytes.NewReader([]byte(body)))
		if err != nil {
			return
		}
		r.RequestURI = uri
		r.Header.Set("Authorization", sig)
		r.Header.Set("X-Oss-Pub-Key-Url", keyURL)
		if md5h != "" {
			r.Header.Set("Content-MD5", md5h)
		}
		called := false
		next := handlerFunc(func(http.ResponseWriter, *http.Request) error { called = true; return nil })
		_ = h.callback.serveCallback(httptest.NewRecorder(), withReplacer(r), next)
		genuine := uri == e1Path && body == e1Body && sig == e1Sig
		if called && !genuine {
			t.Fatalf("unverified callback reached the upstream: %q %q %q %q", uri, body, sig, keyURL)
		}
	})
}
