package caddyoss

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkCallbackRoute verifies a new callback each iteration (signed
// outside the timer with a trusted 1024-bit key), records it against
// replays in file system storage and hands it to an upstream that answers
// at once: with delivery direct, with delivery queued (a store and a
// delete more), and the upstream alone for comparison.
func BenchmarkCallbackRoute(b *testing.B) {
	key, _ := rsa.GenerateKey(rand.Reader, 1024)
	keyFile := writeKeyPEM(b, key)
	next := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write([]byte(`{"ok":true}`))
		return err
	})
	for _, mode := range []string{"upstream only", deliveryModeDirect, deliveryModeQueued} {
		b.Run(mode, func(b *testing.B) {
			h := testHandler(b, func(h *Handler) {
				h.Bucket = "yonghu-test"
				h.CallbackPath = "/index.php"
				h.Callback = &CallbackConfig{TrustedKeys: []string{keyFile}, VerifyOnly: true, Delivery: mode}
				if mode == "upstream only" {
					h.Callback.Delivery = deliveryModeDirect
				}
			})
			h.logger = zap.NewNop()
			emuURL := base64.StdEncoding.EncodeToString([]byte("http://127.0.0.1:9/key.pem"))
			b.ReportAllocs()
			n := 0
			upstreamOnly := mode == "upstream only"
			for b.Loop() {
				// Signing is not what is measured; StopTimer itself costs
				// more than the upstream alone, which is timed with the
				// building of its request.
				if !upstreamOnly {
					b.StopTimer()
				}
				n++
				body := fmt.Sprintf("bucket=yonghu-test&object=a%%2F%d.png&size=%d", n, n)
				r := httptest.NewRequest("POST", "/index.php", strings.NewReader(body))
				if !upstreamOnly { // the upstream checks nothing: no signature to make
					r.Header.Set("Authorization", signCallback(b, key, "/index.php", body))
				}
				r.Header.Set("X-Oss-Pub-Key-Url", emuURL)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r = withReplacer(r)
				rec := httptest.NewRecorder()
				if !upstreamOnly {
					b.StartTimer()
				}
				var err error
				if upstreamOnly {
					err = next.ServeHTTP(rec, r)
				} else {
					err = h.ServeHTTP(rec, r, next)
				}
				if err != nil || rec.Code != 200 {
					b.Fatalf("%d %v %s", rec.Code, err, rec.Body)
				}
			}
		})
	}
}
