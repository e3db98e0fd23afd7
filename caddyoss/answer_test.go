package caddyoss

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAnswerNormalized(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantBody   string
	}{
		{"json", 200, `{"ok":true}`, 200, `{"ok":true}`},
		{"201 json", 201, `{"id":1}`, 200, `{"id":1}`},
		{"empty", 204, ``, 200, `{"status":"delivered"}`},
		{"text", 200, `saved`, 200, `{"answer":"saved","status":"delivered"}`},
		{"bom", 200, "\xef\xbb\xbf{\"ok\":1}", 200, `{"ok":1}`},
		{"4xx text", 409, `duplicate upload`, 409, `{"error":"duplicate upload","status":"delivered"}`},
		{"4xx json", 422, `{"error":"bad type"}`, 422, `{"error":"bad type"}`},
		{"too large", 200, `"` + strings.Repeat("x", maxAnswerBytes) + `"`, 200, `{"answer":"the app's answer was larger than 1 MB","status":"delivered"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAnswerRecorder()
			a.WriteHeader(tc.status)
			// in pieces, as a streaming upstream writes
			for b := []byte(tc.body); len(b) > 0; {
				n := min(len(b), 4096)
				_, _ = a.Write(b[:n])
				b = b[n:]
			}
			status, body := a.normalized()
			if status != tc.wantStatus || string(body) != tc.wantBody || !json.Valid(body) {
				t.Errorf("got %d %.80s", status, body)
			}
			rec := httptest.NewRecorder()
			_ = writeJSON(rec, status, body)
			if rec.Header().Get("Content-Length") != fmt.Sprint(len(body)) || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}
