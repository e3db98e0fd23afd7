package ossemu_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

// An https callback gets a TLS server name only when the callback parameter
// says callbackSNI: true, as on OSS; the certificate is not verified. A
// server that needs the name to pick a certificate fails the handshake
// without it, and the uploader gets 203.
func TestCallbackSNI(t *testing.T) {
	var mu sync.Mutex
	var names []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	// Like Caddy: the certificate is chosen by server name, and there is
	// none without one.
	cert := srv.TLS.Certificates[0]
	srv.TLS.Certificates = nil
	srv.TLS.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		mu.Lock()
		names = append(names, hello.ServerName)
		mu.Unlock()
		if hello.ServerName == "" {
			return nil, errors.New("no certificate without a server name")
		}
		return &cert, nil
	}
	// httptest's certificate is self-signed for 127.0.0.1 and example.com:
	// the emulator must not verify it.
	cbURL := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/cb"

	emu := startEmu(t, ossemu.Options{})
	b := ossBucket(t, emu, testAK, testSK)
	for _, tc := range []struct {
		name   string
		sni    any
		want   string
		status int
	}{
		{"default", nil, "", 203},
		{"callbackSNI false", false, "", 203},
		{"callbackSNI true", true, "localhost", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			names = nil
			mu.Unlock()
			param := map[string]any{"callbackUrl": cbURL, "callbackBody": "object=${object}"}
			if tc.sni != nil {
				param["callbackSNI"] = tc.sni
			}
			js, _ := json.Marshal(param)
			err := b.PutObject("sni.txt", strings.NewReader("x"), oss.Callback(base64.StdEncoding.EncodeToString(js)))
			var se oss.ServiceError
			switch {
			case tc.status == 200 && err != nil:
				t.Fatalf("upload: %v", err)
			case tc.status == 203 && (!errors.As(err, &se) || se.StatusCode != 203):
				t.Fatalf("upload: %v, want 203", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(names) != 1 || names[0] != tc.want {
				t.Errorf("server names seen %q, want %q", names, tc.want)
			}
		})
	}
	// A callbackSNI that is not a boolean is an invalid callback parameter.
	js, _ := json.Marshal(map[string]any{"callbackUrl": cbURL, "callbackBody": "object=${object}", "callbackSNI": "yes"})
	err := b.PutObject("sni.txt", strings.NewReader("x"), oss.Callback(base64.StdEncoding.EncodeToString(js)))
	var se oss.ServiceError
	if !errors.As(err, &se) || se.StatusCode != 400 || se.Code != "InvalidArgument" {
		t.Errorf("callbackSNI \"yes\": %v", err)
	}
}
