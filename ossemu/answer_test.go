package ossemu_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// answerWith answers a callback with a JSON body of the given status and a
// Content-Length.
func answerWith(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// rawAnswer answers 200 with the given header lines and body written as
// they are, then closes the connection.
func rawAnswer(t *testing.T, headerLines, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + headerLines + "Connection: close\r\n\r\n" + body)
		_ = bw.Flush()
	}
}

// TestCallbackAnswerContract: OSS relays a callback answer to the uploader
// only when it is 200 with a Content-Length and a JSON body of at most
// 1 MB, within the timeout; anything else (a Content-Length missing, not a
// number, or not the body's length included) is 203 CallbackFailed, and the
// object stays stored. Callbacks() records what the callback server said.
func TestCallbackAnswerContract(t *testing.T) {
	const ok = `{"ok":true}`
	large := `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		status  int    // what the uploader gets
		reason  string // in the CallbackFailed message and the record's Err
		seen    int    // the status Callbacks() records (0: no answer)
		answer  string // the answer Callbacks() records, when checked
	}{
		{"200 JSON with Content-Length", answerWith(200, ok), 200, "", 200, ok},
		{"chunked JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			_ = http.NewResponseController(w).Flush() // headers out before the body: chunked
			_, _ = io.WriteString(w, ok)
		}, 203, "Content-Length is missing", 200, ok},
		{"JSON until the connection closes", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + ok)
			_ = bw.Flush()
		}, 203, "Content-Length is missing", 200, ok},
		{"non-numeric Content-Length", rawAnswer(t, "Content-Length: abc\r\n", ok), 203, "Content-Length is invalid", 0, ""},
		{"negative Content-Length", rawAnswer(t, "Content-Length: -1\r\n", ok), 203, "Content-Length is invalid", 0, ""},
		{"two different Content-Lengths", rawAnswer(t, "Content-Length: 11\r\nContent-Length: 12\r\n", ok), 203, "Content-Length is invalid", 0, ""},
		{"Content-Length over the body", rawAnswer(t, "Content-Length: 50\r\n", ok), 203, "shorter than its Content-Length", 200, ok},
		{"Content-Length under the body", rawAnswer(t, "Content-Length: 5\r\n", ok), 203, "Response body is not valid json format.", 200, ok[:5]},
		{"Content-Length 0", rawAnswer(t, "Content-Length: 0\r\n", ok), 203, "Response body is not valid json format.", 200, ""},
		{"late", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(800 * time.Millisecond)
			answerWith(200, ok)(w, r)
		}, 203, "reply timeout", 0, ""},
		{"late body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(ok)))
			w.WriteHeader(200)
			_ = http.NewResponseController(w).Flush()
			time.Sleep(800 * time.Millisecond)
			_, _ = io.WriteString(w, ok)
		}, 203, "reply timeout", 200, ""},
		{"over 1 MB", answerWith(200, large), 203, "Response body is too large.", 200, ""},
		{"not JSON", answerWith(200, "<html>ok</html>"), 203, "Response body is not valid json format.", 200, "<html>ok</html>"},
		{"JSON after a BOM", answerWith(200, "\ufeff"+ok), 203, "Response body is not valid json format.", 200, "\ufeff" + ok},
		{"500", answerWith(500, `{"error":"down"}`), 203, "Error status : 500.", 500, `{"error":"down"}`},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, 203, "Error status : 204.", 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			emu := startEmu(t, ossemu.Options{CallbackTimeout: 300 * time.Millisecond})
			b := ossBucket(t, emu, testAK, testSK)
			cb := b64JSON(map[string]string{"callbackUrl": srv.URL + "/cb", "callbackBody": "object=${object}"})

			var relayed []byte
			err := b.PutObject("answer.txt", strings.NewReader("x"), oss.Callback(cb), oss.CallbackResult(&relayed))
			var se oss.ServiceError
			switch {
			case tc.status == 200 && err != nil:
				t.Fatalf("upload: %v", err)
			case tc.status == 200 && string(relayed) != ok:
				t.Fatalf("the uploader got %q, want the callback's answer %q", relayed, ok)
			case tc.status == 203 && (!errors.As(err, &se) || se.StatusCode != 203 || se.Code != "CallbackFailed" ||
				!strings.Contains(se.Message, tc.reason)):
				t.Fatalf("upload: %v, want 203 CallbackFailed %q", err, tc.reason)
			}
			if _, stored := emu.Object(testBucket, "answer.txt"); !stored {
				t.Fatal("the object must stay stored whatever the callback answers")
			}

			calls := emu.Callbacks()
			if len(calls) != 1 {
				t.Fatalf("%d callbacks recorded, want 1", len(calls))
			}
			rec := calls[0]
			if rec.Status != tc.seen {
				t.Errorf("recorded status %d, want %d", rec.Status, tc.seen)
			}
			if tc.answer != "" && rec.Answer != tc.answer {
				t.Errorf("recorded answer %q, want %q", rec.Answer, tc.answer)
			}
			if tc.reason == "" && rec.Err != "" || !strings.Contains(rec.Err, tc.reason) {
				t.Errorf("recorded error %q, want %q", rec.Err, tc.reason)
			}
		})
	}
}
