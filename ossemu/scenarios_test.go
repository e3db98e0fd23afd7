package ossemu_test

// Documented aliyun-oss-go-sdk scenarios against the emulator: resumable
// uploads from a checkpoint (scenarios_resumable_test.go), callbacks on
// CompleteMultipartUpload, V4 additional headers, and the emulator's
// command interface.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// TestScenarioCompleteMultipartCallback: CompleteMultipartUpload with
// oss.Callback and oss.CallbackVar; the callback server receives the
// rendered body once, the object is stored, and the SDK hands back the
// callback server's answer through oss.CallbackResult.
func TestScenarioCompleteMultipartCallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		auth     oss.ClientOption
		bodyType string
		body     string
	}{
		{"V1 form body", oss.AuthVersion(oss.AuthV1), "application/x-www-form-urlencoded",
			"bucket=${bucket}&object=${object}&size=${size}&etag=${etag}&mimeType=${mimeType}&user=${x:user}&op=${operation}"},
		{"V4 JSON body", oss.AuthVersion(oss.AuthV4), "application/json",
			`{"bucket":${bucket},"object":${object},"size":${size},"etag":${etag},"mimeType":${mimeType},"user":${x:user},"op":${operation}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{})
			answer := `{"Status":"OK","fileId":"f-42"}`
			cs := newCallbackServer(t, http.StatusOK, answer)
			b := ossBucket(t, emu, testAK, testSK, tc.auth)
			key := "uploads/eric/report 2024.pdf"
			data := randomBytes(t, 230<<10)

			imur, err := b.InitiateMultipartUpload(key, oss.ContentType("application/pdf"))
			if err != nil {
				t.Fatal(err)
			}
			parts := uploadParts(t, b, imur, data)
			callback := b64JSON(map[string]string{
				"callbackUrl": cs.URL + "/hooks/oss?app=docs", "callbackBody": tc.body, "callbackBodyType": tc.bodyType,
			})
			vars := b64JSON(map[string]string{"x:user": "eric"})
			var got []byte
			res, err := b.CompleteMultipartUpload(imur, parts, oss.Callback(callback), oss.CallbackVar(vars), oss.CallbackResult(&got))
			if err != nil {
				t.Fatalf("CompleteMultipartUpload with a callback: %v", err)
			}
			if string(got) != answer {
				t.Errorf("the SDK returned %q, want the callback server's answer %q", got, answer)
			}
			if res.Key != "" {
				t.Errorf("with a callback the answer is the callback's JSON, yet the SDK parsed a result %+v", res)
			}

			obj, ok := emu.Object(testBucket, key)
			if !ok || !bytes.Equal(obj.Data, data) || obj.Type != "Multipart" {
				t.Fatalf("stored object: ok=%v %d bytes type %s", ok, len(obj.Data), obj.Type)
			}
			cs.mu.Lock()
			n := len(cs.requests)
			cs.mu.Unlock()
			if n != 1 {
				t.Fatalf("the callback server got %d requests, want 1", n)
			}
			c := cs.last(t)
			if c.uri != "/hooks/oss?app=docs" || c.header.Get("Content-Type") != tc.bodyType {
				t.Errorf("callback request %s, Content-Type %q", c.uri, c.header.Get("Content-Type"))
			}
			verifyCallback(t, c)
			want := map[string]string{
				"bucket": testBucket, "object": key, "size": strconv.Itoa(len(data)),
				"etag": strings.Trim(obj.ETag, `"`), "mimeType": "application/pdf", "user": "eric",
				"op": "CompleteMultipartUpload",
			}
			fields := map[string]string{}
			if tc.bodyType == "application/json" {
				var m map[string]any
				if err := json.Unmarshal(c.body, &m); err != nil {
					t.Fatalf("JSON callback body %s: %v", c.body, err)
				}
				for k, v := range m {
					switch v := v.(type) {
					case string:
						fields[k] = v
					case float64:
						fields[k] = strconv.FormatFloat(v, 'f', -1, 64)
					default:
						t.Errorf("callback field %s = %v (%T)", k, v, v)
					}
				}
			} else {
				form, err := url.ParseQuery(string(c.body))
				if err != nil {
					t.Fatalf("form callback body %s: %v", c.body, err)
				}
				for k := range form {
					fields[k] = form.Get(k)
				}
			}
			for k, v := range want {
				if fields[k] != v {
					t.Errorf("callback %s = %q, want %q (body %s)", k, fields[k], v, c.body)
				}
			}
			if len(fields) != len(want) {
				t.Errorf("callback fields %v, want %v", fields, want)
			}
		})
	}
}

// headerTamper changes one request header after the SDK has signed the
// request, and records the Authorization header it saw.
type headerTamper struct {
	name, value string
	mu          sync.Mutex
	auth        []string
}

func (h *headerTamper) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()
	if h.name != "" {
		r = r.Clone(r.Context())
		r.Header.Set(h.name, h.value)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (h *headerTamper) lastAuth() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.auth) == 0 {
		return ""
	}
	return h.auth[len(h.auth)-1]
}

// TestScenarioV4AdditionalHeaders: with oss.AdditionalHeaders, V4
// signatures of PutObject and GetObject cover the named headers
// (Authorization lists them; a value changed in transit is refused),
// while without it the same headers are not signed. SignURL lists them in
// x-oss-additional-headers and the URL only works with them as signed.
func TestScenarioV4AdditionalHeaders(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	additional := oss.AdditionalHeaders([]string{"Content-Disposition", "X-App-Trace"})
	trace := oss.SetHeader("X-App-Trace", "trace-1")
	put := func(b *oss.Bucket, key string) error {
		return b.PutObject(key, strings.NewReader("additional"), trace, oss.ContentDisposition("attachment"))
	}
	get := func(b *oss.Bucket, key string) error {
		rc, err := b.GetObject(key, trace)
		if err != nil {
			return err
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err == nil && string(got) != "additional" {
			err = errors.New("read " + string(got))
		}
		return err
	}
	for _, tc := range []struct {
		name       string
		additional bool
		tamper     [2]string // header changed after signing
		wantCode   string    // "" for success
		putOnly    bool
	}{
		{"signed as sent", true, [2]string{}, "", false},
		{"additional header changed", true, [2]string{"X-App-Trace", "trace-2"}, "SignatureDoesNotMatch", false},
		{"other additional header changed", true, [2]string{"Content-Disposition", "inline"}, "SignatureDoesNotMatch", true},
		{"not additional, changed", false, [2]string{"X-App-Trace", "trace-2"}, "", false},
	} {
		// The SDK lists the additional headers the request carries: GET
		// sends no Content-Disposition.
		for _, op := range []struct {
			name   string
			do     func(*oss.Bucket, string) error
			listed string
		}{{"put", put, "content-disposition;x-app-trace"}, {"get", get, "x-app-trace"}} {
			if tc.putOnly && op.name != "put" {
				continue
			}
			t.Run(tc.name+"/"+op.name, func(t *testing.T) {
				key := "additional/" + strings.ReplaceAll(tc.name, " ", "-")
				if op.name == "get" {
					if err := emu.PutObject(testBucket, key, []byte("additional"), "text/plain"); err != nil {
						t.Fatal(err)
					}
				}
				rt := &headerTamper{name: tc.tamper[0], value: tc.tamper[1]}
				opts := []oss.ClientOption{oss.AuthVersion(oss.AuthV4), oss.HTTPClient(&http.Client{Transport: rt})}
				if tc.additional {
					opts = append(opts, additional)
				}
				err := op.do(ossBucket(t, emu, testAK, testSK, opts...), key)
				wantAuth := ",AdditionalHeaders=" + op.listed + ",Signature="
				auth := rt.lastAuth()
				if !strings.HasPrefix(auth, "OSS4-HMAC-SHA256 ") || tc.additional != strings.Contains(auth, wantAuth) || !tc.additional && strings.Contains(auth, "AdditionalHeaders") {
					t.Errorf("Authorization %q; additional headers: %v", auth, tc.additional)
				}
				if tc.wantCode == "" {
					if err != nil {
						t.Fatalf("want success, got %v", err)
					}
					return
				}
				if st, code := serviceCode(t, err); st != 403 || code != tc.wantCode {
					t.Fatalf("got %d %s, want 403 %s", st, code, tc.wantCode)
				}
			})
		}
	}

	t.Run("SignURL", func(t *testing.T) {
		b := ossBucket(t, emu, testAK, testSK, oss.AuthVersion(oss.AuthV4), additional)
		key := "additional/signed url.txt"
		putURL, err := b.SignURL(key, oss.HTTPPut, 60, trace, oss.ContentDisposition("attachment"))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(putURL)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query().Get("x-oss-additional-headers"); got != "content-disposition;x-app-trace" {
			t.Fatalf("x-oss-additional-headers = %q in %s", got, putURL)
		}
		signed := http.Header{"X-App-Trace": {"trace-1"}, "Content-Disposition": {"attachment"}}
		for _, tc := range []struct {
			name   string
			header http.Header
		}{
			{"without the additional headers", nil},
			{"without X-App-Trace", http.Header{"Content-Disposition": {"attachment"}}},
			{"another X-App-Trace", http.Header{"X-App-Trace": {"trace-2"}, "Content-Disposition": {"attachment"}}},
			{"another Content-Disposition", http.Header{"X-App-Trace": {"trace-1"}, "Content-Disposition": {"inline"}}},
		} {
			if status, code, _, body := rawRequest(t, http.MethodPut, putURL, tc.header, "x"); status != 403 || code != "SignatureDoesNotMatch" {
				t.Errorf("PUT %s: %d %s", tc.name, status, body)
			}
		}
		if _, ok := emu.Object(testBucket, key); ok {
			t.Fatal("a PUT without the signed additional headers was stored")
		}
		if status, _, _, body := rawRequest(t, http.MethodPut, putURL, signed, "signed url bytes"); status != 200 {
			t.Fatalf("PUT with the additional headers as signed: %d %s", status, body)
		}
		if obj, ok := emu.Object(testBucket, key); !ok || string(obj.Data) != "signed url bytes" {
			t.Fatalf("stored %+v", obj)
		}

		getURL, err := b.SignURL(key, oss.HTTPGet, 60, trace)
		if err != nil {
			t.Fatal(err)
		}
		if status, code, _, body := rawRequest(t, http.MethodGet, getURL, nil, ""); status != 403 || code != "SignatureDoesNotMatch" {
			t.Errorf("GET without X-App-Trace: %d %s", status, body)
		}
		if status, _, _, body := rawRequest(t, http.MethodGet, getURL, http.Header{"X-App-Trace": {"trace-1"}}, ""); status != 200 || body != "signed url bytes" {
			t.Errorf("GET with X-App-Trace: %d %s", status, body)
		}
	})
}

// TestScenarioCommands: the command interface cmd/ossemu serves on its
// standard input. expire-sessions takes effect before its answer is
// written; unknown commands get an error answer; blank lines none; an
// over-long line ends the loop with an error.
func TestScenarioCommands(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   string
		answers []string
		wantErr string
		expired bool
	}{
		{"expire-sessions", "expire-sessions\n", []string{`{"ok":true,"command":"expire-sessions"}`}, "", true},
		{"blank lines and spaces", "\n  \n  expire-sessions  \r\n", []string{`{"ok":true,"command":"expire-sessions"}`}, "", true},
		{"unknown command", "drop-buckets\n", []string{`{"ok":false,"command":"drop-buckets","error":"unknown command \"drop-buckets\"; known: expire-sessions"}`}, "", false},
		{"no newline at the end", "expire-sessions", []string{`{"ok":true,"command":"expire-sessions"}`}, "", true},
		{"line too long", strings.Repeat("x", 5000) + "\nexpire-sessions\n", nil, "reading commands", false},
		{"nothing", "", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, ossemu.Options{})
			c := assumeRole(t, emu, sessionPolicy)
			b := ossBucket(t, emu, tea.StringValue(c.AccessKeyId), tea.StringValue(c.AccessKeySecret),
				oss.AuthVersion(oss.AuthV4), oss.SecurityToken(tea.StringValue(c.SecurityToken)))
			if err := b.PutObject("user/eric/before.txt", strings.NewReader("x")); err != nil {
				t.Fatalf("PutObject before the command: %v", err)
			}
			var out bytes.Buffer
			err := emu.ServeCommands(strings.NewReader(tc.input), &out)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("ServeCommands: %v, want error %q", err, tc.wantErr)
			}
			var answers []string
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				answers = append(answers, sc.Text())
			}
			if strings.Join(answers, "\n") != strings.Join(tc.answers, "\n") {
				t.Fatalf("answers\n%s\nwant\n%s", strings.Join(answers, "\n"), strings.Join(tc.answers, "\n"))
			}
			err = b.PutObject("user/eric/after.txt", strings.NewReader("x"))
			if !tc.expired {
				if err != nil {
					t.Fatalf("PutObject after %q: %v", tc.name, err)
				}
				return
			}
			if st, code := serviceCode(t, err); st != 403 || code != "SecurityTokenExpired" {
				t.Fatalf("PutObject after expire-sessions: %d %s", st, code)
			}
			// A new session works again.
			c2 := assumeRole(t, emu, sessionPolicy)
			b2 := ossBucket(t, emu, tea.StringValue(c2.AccessKeyId), tea.StringValue(c2.AccessKeySecret),
				oss.AuthVersion(oss.AuthV4), oss.SecurityToken(tea.StringValue(c2.SecurityToken)))
			if err := b2.PutObject("user/eric/after.txt", strings.NewReader("x")); err != nil {
				t.Fatalf("PutObject with a session issued after the command: %v", err)
			}
		})
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("closed pipe") }

func TestScenarioCommandsAnswerFails(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	err := emu.ServeCommands(strings.NewReader("expire-sessions\nexpire-sessions\n"), errWriter{})
	if err == nil || !strings.Contains(err.Error(), "closed pipe") {
		t.Fatalf("ServeCommands with a failing writer: %v", err)
	}
}
