package caddyoss

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// maxAnswerBytes is the largest callback answer OSS takes (protocol §4.8).
const maxAnswerBytes = 1 << 20

// answerRecorder captures an upstream's answer to a callback, bounded, so
// that what OSS gets can be rewritten to meet its contract.
type answerRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	over   bool // the answer was larger than maxAnswerBytes
}

func newAnswerRecorder() *answerRecorder { return &answerRecorder{header: http.Header{}} }

func (a *answerRecorder) Header() http.Header { return a.header }

func (a *answerRecorder) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *answerRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if room := maxAnswerBytes + 1 - a.body.Len(); room > 0 {
		if len(b) > room {
			a.body.Write(b[:room])
		} else {
			a.body.Write(b)
		}
	}
	if a.body.Len() > maxAnswerBytes {
		a.over = true
	}
	return len(b), nil
}

// Flush is a no-op: the answer is sent whole, with a Content-Length.
func (a *answerRecorder) Flush() {}

// normalized is the answer OSS gets: status 200 for a 2xx (the app's 4xx
// is kept: it is the app saying no, which OSS reports to the uploader),
// a JSON body of at most 1 MB without a byte order mark, and a
// Content-Length. A body that is not JSON is wrapped as a JSON string.
func (a *answerRecorder) normalized() (int, []byte) {
	status := a.status
	if status == 0 || status < http.StatusBadRequest {
		status = http.StatusOK
	}
	body := bytes.TrimPrefix(a.body.Bytes(), []byte("\xef\xbb\xbf"))
	field := "answer"
	if status != http.StatusOK {
		field = "error"
	}
	switch {
	case a.over:
		body, _ = json.Marshal(map[string]string{"status": "delivered", field: "the app's answer was larger than 1 MB"})
	case len(bytes.TrimSpace(body)) == 0:
		body = []byte(`{"status":"delivered"}`)
	case !json.Valid(body):
		body, _ = json.Marshal(map[string]string{"status": "delivered", field: string(body)})
	}
	return status, body
}

// writeNormalized sends a recorded answer to OSS, normalized.
func writeNormalized(w http.ResponseWriter, a *answerRecorder) error {
	status, body := a.normalized()
	return writeJSON(w, status, body)
}
