package caddyoss

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func benchRoute(b *testing.B, h *Handler, target string) {
	b.Helper()
	next := nextMustNotRun(&testing.T{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := withReplacer(httptest.NewRequest("GET", target, nil))
			req.Header.Set("X-User", "alice")
			if err := h.ServeHTTP(rec, req, next); err != nil || rec.Code != 200 {
				b.Fatalf("status %d err %v", rec.Code, err)
			}
		}
	})
}

func benchHandler(b *testing.B, version string) *Handler {
	h := testHandler(b, func(h *Handler) {
		h.SignatureVersion = version
		h.KeyPrefix = "uploads/{http.request.header.X-User}/"
		h.MaxSize = 20 << 20
		h.AllowTypes = []string{"image/*"}
	})
	h.logger = zap.NewNop()
	return h
}

func BenchmarkPostPolicyV4(b *testing.B) {
	benchRoute(b, benchHandler(b, osssign.V4), "/oss/post-policy?filename=a.png&type=image/png&size=1000")
}

func BenchmarkPostPolicyV1(b *testing.B) {
	benchRoute(b, benchHandler(b, osssign.V1), "/oss/post-policy?filename=a.png&type=image/png&size=1000")
}

func BenchmarkPresignV4(b *testing.B) {
	benchRoute(b, benchHandler(b, osssign.V4), "/oss/presign?filename=a.png&type=image/png")
}

func BenchmarkPresignV1(b *testing.B) {
	benchRoute(b, benchHandler(b, osssign.V1), "/oss/presign?filename=a.png&type=image/png")
}

func BenchmarkUppyParams(b *testing.B) {
	benchRoute(b, benchHandler(b, osssign.V4), "/oss/uppy/s3/params?filename=a.png&type=image/png")
}

// BenchmarkUppySignPart signs part 1 of an upload whose id is sealed as
// the create route seals it (no OSS call is made to sign a part).
func BenchmarkUppySignPart(b *testing.B) {
	h := benchHandler(b, osssign.V4)
	key := "uploads/alice/0123456789abcdef0123456789abcdef.png"
	id, err := h.uppy.sealUploadID(context.Background(), key, "0004B9894A22E5B1888A1E29F8236E2D")
	if err != nil {
		b.Fatal(err)
	}
	benchRoute(b, h, "/oss/uppy/s3/multipart/"+id+"/1?key="+url.QueryEscape(key))
}

// BenchmarkRespondBaseline is Caddy's respond handler with the same request
// set-up, for comparison.
func BenchmarkRespondBaseline(b *testing.B) {
	sr := caddyhttp.StaticResponse{StatusCode: "200", Body: `{"ok":true}`}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := withReplacer(httptest.NewRequest("GET", "/oss/presign?filename=a.png&type=image/png", nil))
			if err := sr.ServeHTTP(rec, req, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps nothing but the status, so
// the handler benchmarks below measure the handler alone.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkHandler measures each signing route's handler alone, on one
// goroutine, with a request (and Caddy's HTTP replacer) made once: what
// the route adds to Caddy's own cost of serving a request.
func BenchmarkHandler(b *testing.B) {
	v4, v1 := benchHandler(b, osssign.V4), benchHandler(b, osssign.V1)
	sts := benchSTSHandler(b)
	for _, bc := range []struct {
		name   string
		h      caddyhttp.MiddlewareHandler
		target string
	}{
		{"PostPolicyV4", v4, "/oss/post-policy?filename=a.png&type=image/png&size=1000"},
		{"PostPolicyV1", v1, "/oss/post-policy?filename=a.png&type=image/png&size=1000"},
		{"PresignV4", v4, "/oss/presign?filename=a.png&type=image/png"},
		{"PresignV1", v1, "/oss/presign?filename=a.png&type=image/png"},
		{"UppyParams", v4, "/oss/uppy/s3/params?filename=a.png&type=image/png"},
		{"STS", sts, "/oss/sts"},
		{"Respond", respondHandler{caddyhttp.StaticResponse{StatusCode: "200", Body: "ok"}}, "/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", bc.target, nil)
			req.Header.Set("X-User", "alice")
			repl := caddyhttp.NewTestReplacer(req)
			req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
			w := &discardWriter{h: http.Header{}}
			next := nextMustNotRun(&testing.T{})
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				if err := bc.h.ServeHTTP(w, req, next); err != nil || w.code != 200 {
					b.Fatalf("status %d err %v", w.code, err)
				}
			}
		})
	}
}

// respondHandler adapts StaticResponse to the benchmark's table.
type respondHandler struct{ caddyhttp.StaticResponse }

func (r respondHandler) ServeHTTP(w http.ResponseWriter, req *http.Request, _ caddyhttp.Handler) error {
	return r.StaticResponse.ServeHTTP(w, req, nil)
}
