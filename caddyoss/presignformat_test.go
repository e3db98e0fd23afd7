package caddyoss

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// presignAnswer is one answer of the presign route, whichever its form.
type presignAnswer struct {
	status      int
	contentType string
	vary        string
	body        string
}

func servePresignRequest(t *testing.T, h *Handler, target string, header map[string]string) presignAnswer {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, withReplacer(req), nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	return presignAnswer{rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Vary"), rec.Body.String()}
}

// signedType is the Content-Type a presign answer was signed for, read from
// the JSON answer's headers.
func signedType(t *testing.T, a presignAnswer) string {
	t.Helper()
	var resp presignResponse
	if err := json.Unmarshal([]byte(a.body), &resp); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a.body)
	}
	return resp.Headers["Content-Type"]
}

// The type a presigned PUT is signed for when the client names none:
// default_type (placeholders expanded), else the filename's extension's
// type, else application/octet-stream; always within allow_types, with a
// 400 naming the type otherwise. A named type always wins.
func TestPresignSignedType(t *testing.T) {
	tests := []struct {
		name        string
		defaultType string
		allowTypes  []string
		query       string
		header      map[string]string
		want        string // the signed type; "" when a 400 is expected
		wantErr     string
	}{
		{name: "png extension", query: "filename=a.png", want: "image/png"},
		{name: "upper-case extension", query: "filename=SCAN.PNG", want: "image/png"},
		{name: "pdf extension", query: "filename=report.pdf", want: "application/pdf"},
		{name: "parameters stripped", query: "filename=notes.txt", want: "text/plain"},
		{name: "html parameters stripped", query: "filename=page.html", want: "text/html"},
		{name: "windows path", query: "filename=" + url.QueryEscape(`C:\fakepath\photo.jpg`), want: "image/jpeg"},
		{name: "unix path", query: "filename=" + url.QueryEscape("dir.png/photo"), want: defaultPresignType},
		{name: "no extension", query: "filename=README", want: defaultPresignType},
		{name: "unknown extension", query: "filename=a.zzq9", want: defaultPresignType},
		{name: "dot only", query: "filename=a.", want: defaultPresignType},
		{name: "no filename", query: "", want: defaultPresignType},
		{name: "named type wins over extension", query: "filename=a.png&type=image/gif", want: "image/gif"},
		{name: "default_type wins over extension", defaultType: "image/png", query: "filename=a.pdf", want: "image/png"},
		{name: "default_type without filename", defaultType: "image/png", query: "", want: "image/png"},
		{name: "named type wins over default_type", defaultType: "image/png", query: "type=image/webp", want: "image/webp"},
		{name: "default_type with parameters", defaultType: "text/plain; charset=utf-8", query: "", want: "text/plain; charset=utf-8"},
		{name: "placeholder default_type", defaultType: "{http.request.header.X-Type}", query: "filename=a.pdf",
			header: map[string]string{"X-Type": "image/webp"}, want: "image/webp"},
		{name: "placeholder default_type empty falls back to extension", defaultType: "{http.request.header.X-Type}", query: "filename=a.png", want: "image/png"},
		{name: "placeholder default_type empty, no extension", defaultType: "{http.request.header.X-Type}", query: "", want: defaultPresignType},
		{name: "placeholder default_type not a type", defaultType: "{http.request.header.X-Type}", query: "",
			header: map[string]string{"X-Type": "png"}, wantErr: `default_type: "png" is not a media type`},
		{name: "placeholder default_type wildcard", defaultType: "{http.request.header.X-Type}", query: "",
			header: map[string]string{"X-Type": "image/*"}, wantErr: `default_type: "image/*" is not a media type`},
		{name: "allowed extension type", allowTypes: []string{"image/*"}, query: "filename=a.png", want: "image/png"},
		{name: "allowed extension type, case", allowTypes: []string{"IMAGE/PNG"}, query: "filename=a.PNG", want: "image/png"},
		{name: "extension type outside allow_types", allowTypes: []string{"image/*"}, query: "filename=a.pdf",
			wantErr: `type "application/pdf" (signed because the request names no type) is not in allow_types (image/*)`},
		{name: "octet-stream outside allow_types", allowTypes: []string{"image/*", "application/pdf"}, query: "filename=data",
			wantErr: `type "application/octet-stream" (signed because the request names no type) is not in allow_types (image/*, application/pdf)`},
		{name: "default_type within allow_types", defaultType: "image/png", allowTypes: []string{"image/*"}, query: "filename=a.pdf", want: "image/png"},
		{name: "placeholder default_type outside allow_types", defaultType: "{http.request.header.X-Type}", allowTypes: []string{"image/*"},
			header: map[string]string{"X-Type": "text/html"}, query: "filename=a.png",
			wantErr: `type "text/html" (signed because the request names no type) is not in allow_types (image/*)`},
		{name: "placeholder default_type within allow_types", defaultType: "{http.request.header.X-Type}", allowTypes: []string{"image/*"},
			header: map[string]string{"X-Type": "Image/WebP"}, query: "", want: "Image/WebP"},
		{name: "named type outside allow_types", allowTypes: []string{"image/*"}, query: "filename=a.png&type=text/html",
			wantErr: `type "text/html" is not in allow_types (image/*)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := testHandler(t, func(h *Handler) { h.DefaultType, h.AllowTypes = tc.defaultType, tc.allowTypes })
			a := servePresignRequest(t, h, "/oss/presign?"+tc.query, tc.header)
			if tc.wantErr != "" {
				var body struct{ Error string }
				_ = json.Unmarshal([]byte(a.body), &body)
				if a.status != 400 || !strings.Contains(body.Error, tc.wantErr) {
					t.Fatalf("status %d %s, want 400 with %q", a.status, a.body, tc.wantErr)
				}
				return
			}
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if got := signedType(t, a); got != tc.want {
				t.Errorf("signed for %q, want %q", got, tc.want)
			}
		})
	}
}

// default_type is the presign route's: a PostObject request that names no
// type pins none, and with allow_types still has to name one.
func TestDefaultTypeLeavesPostObjectAlone(t *testing.T) {
	h := testHandler(t, func(h *Handler) { h.DefaultType = "image/png" })
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, withReplacer(httptest.NewRequest("GET", "/oss/post-policy?filename=a.png", nil)), nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "content-type") || strings.Contains(rec.Body.String(), "Content-Type") {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	h = testHandler(t, func(h *Handler) { h.DefaultType, h.AllowTypes = "image/png", []string{"image/*"} })
	rec = httptest.NewRecorder()
	if err := h.ServeHTTP(rec, withReplacer(httptest.NewRequest("GET", "/oss/post-policy?filename=a.png", nil)), nextMustNotRun(t)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "type is required") {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
}

// The presign route's answer by presign_format and Accept: the bare URL as
// text/plain, or the JSON object; both say Vary: Accept.
func TestPresignFormat(t *testing.T) {
	const (
		bare = "url"
		obj  = "json"
	)
	accepts := []struct {
		accept      string
		json, url   string // the answer with presign_format json, url
		explanation string
	}{
		{"", obj, bare, "no Accept"},
		{"*/*", obj, bare, "fetch's default"},
		{"text/plain", bare, bare, "Alibaba's sample client"},
		{"text/plain;q=0.9", bare, bare, "text/plain with a weight"},
		{"TEXT/PLAIN", bare, bare, "case"},
		{"application/json", obj, obj, "the sandbox page"},
		{"application/json, text/plain, */*", obj, bare, "axios's default"},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", obj, bare, "a browser navigating"},
	}
	for _, format := range []string{"", presignFormatJSON, presignFormatURL} {
		h := testHandler(t, func(h *Handler) { h.PresignFormat = format })
		for _, tc := range accepts {
			want := tc.json
			if format == presignFormatURL {
				want = tc.url
			}
			t.Run(format+"/"+tc.explanation, func(t *testing.T) {
				hdr := map[string]string{}
				if tc.accept != "" {
					hdr["Accept"] = tc.accept
				}
				a := servePresignRequest(t, h, "/oss/presign?filename=a.png", hdr)
				if a.status != 200 || a.vary != "Accept" {
					t.Fatalf("status %d, Vary %q: %s", a.status, a.vary, a.body)
				}
				var signed string
				switch want {
				case bare:
					if a.contentType != "text/plain; charset=utf-8" {
						t.Fatalf("Content-Type %q for the bare URL: %s", a.contentType, a.body)
					}
					signed = a.body
				case obj:
					var resp presignResponse
					if !strings.HasPrefix(a.contentType, "application/json") || json.Unmarshal([]byte(a.body), &resp) != nil {
						t.Fatalf("Content-Type %q, want JSON: %s", a.contentType, a.body)
					}
					if resp.Method != "PUT" || resp.Headers["Content-Type"] != "image/png" || resp.Key == "" {
						t.Errorf("answer %+v", resp)
					}
					signed = resp.URL
				}
				u, err := url.Parse(signed)
				if err != nil || u.Scheme != "https" || u.Query().Get("x-oss-signature") == "" || !strings.HasSuffix(u.Path, ".png") {
					t.Errorf("not a presigned URL: %q", signed)
				}
			})
		}
	}
}
