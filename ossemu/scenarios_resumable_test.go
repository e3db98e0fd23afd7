package ossemu_test

// The resumable upload scenario: UploadFile with a checkpoint file, cut
// after some parts by the transport and resumed, and the emulator behind a
// handler that counts the requests reaching it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// operationName names the OSS operation of a request as the emulator
// routes it, for counting what reached it.
func operationName(r *http.Request) string {
	q := r.URL.Query()
	_, uploads := q["uploads"]
	_, uploadID := q["uploadId"]
	switch {
	case r.Method == http.MethodPost && uploads:
		return "InitiateMultipartUpload"
	case r.Method == http.MethodPut && uploadID:
		return "UploadPart"
	case r.Method == http.MethodPost && uploadID:
		return "CompleteMultipartUpload"
	case r.Method == http.MethodGet && uploadID:
		return "ListParts"
	case r.Method == http.MethodDelete && uploadID:
		return "AbortMultipartUpload"
	}
	return r.Method
}

// countingEmu serves an emulator behind a handler that counts the
// requests reaching it, by operation.
type countingEmu struct {
	*ossemu.Emulator
	url string
	mu  sync.Mutex
	ops map[string]int
}

func startCountingEmu(t *testing.T) *countingEmu {
	t.Helper()
	emu, err := ossemu.New(ossemu.Options{
		Buckets:    []string{testBucket},
		AccessKeys: map[string]string{testAK: testSK},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &countingEmu{Emulator: emu, ops: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.ops[operationName(r)]++
		c.mu.Unlock()
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func (c *countingEmu) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

// checkpointFile is the part of the SDK's upload checkpoint file
// (uploadCheckpoint in upload.go) these tests read.
type checkpointFile struct {
	UploadID string
	Parts    []struct {
		Chunk       struct{ Number int }
		IsCompleted bool
	}
}

func readCheckpoint(path string) (checkpointFile, error) {
	var cp checkpointFile
	b, err := os.ReadFile(path)
	if err != nil {
		return cp, err
	}
	err = json.Unmarshal(b, &cp)
	return cp, err
}

func (cp checkpointFile) completed() []int {
	var done []int
	for _, p := range cp.Parts {
		if p.IsCompleted {
			done = append(done, p.Chunk.Number)
		}
	}
	return done
}

var errCut = errors.New("connection cut by the test")

// cutAfterParts lets UploadPart requests of parts 1..keep through and
// fails every later part without sending it. A failing part first waits
// until the checkpoint file records parts 1..keep as done, so that the
// interruption always leaves the same checkpoint behind whatever the
// order the SDK's routines run in.
type cutAfterParts struct {
	keep       int
	checkpoint string
	next       http.RoundTripper
}

func (c *cutAfterParts) RoundTrip(r *http.Request) (*http.Response, error) {
	if operationName(r) != "UploadPart" {
		return c.next.RoundTrip(r)
	}
	n, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
	if err != nil {
		return nil, err
	}
	if n <= c.keep {
		return c.next.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cp, err := readCheckpoint(c.checkpoint); err == nil && len(cp.completed()) >= c.keep {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, errCut
}

// TestScenarioResumableUploadFile: UploadFile with a checkpoint file is
// cut after some parts; the checkpoint names the upload and the parts
// done, and a second UploadFile with the same checkpoint uploads only the
// missing parts to the same upload, completes it and removes the
// checkpoint.
func TestScenarioResumableUploadFile(t *testing.T) {
	const partSize = 100 << 10
	for _, tc := range []struct {
		name     string
		auth     oss.ClientOption
		routines int
		size     int
		keep     int
	}{
		{"V1 three routines", oss.AuthVersion(oss.AuthV1), 3, 7*partSize - 1234, 3},
		{"V4 two routines", oss.AuthVersion(oss.AuthV4), 2, 5 * partSize, 1},
		{"V4 one routine", oss.AuthVersion(oss.AuthV4), 1, 4*partSize + 10, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := startCountingEmu(t)
			dir := t.TempDir()
			src := filepath.Join(dir, "video.bin")
			cpPath := filepath.Join(dir, "video.bin.cp")
			data := randomBytes(t, tc.size)
			if err := writeFile(src, data); err != nil {
				t.Fatal(err)
			}
			parts := (tc.size + partSize - 1) / partSize
			key := "resumable/" + strings.ReplaceAll(tc.name, " ", "-") + ".bin"

			cut := &http.Client{Transport: &cutAfterParts{keep: tc.keep, checkpoint: cpPath, next: http.DefaultTransport}}
			first := bucketAt(t, emu.url, "cn-hangzhou", testAK, testSK, tc.auth, oss.HTTPClient(cut))
			err := first.UploadFile(key, src, partSize, oss.Routines(tc.routines), oss.Checkpoint(true, cpPath))
			if !errors.Is(err, errCut) {
				t.Fatalf("the cut upload returned %v, want the transport's error", err)
			}
			cp, err := readCheckpoint(cpPath)
			if err != nil {
				t.Fatalf("no checkpoint after the cut: %v", err)
			}
			done := cp.completed()
			if cp.UploadID == "" || len(cp.Parts) != parts || len(done) != tc.keep {
				t.Fatalf("checkpoint: upload %q, %d parts, done %v; want %d parts, %d done", cp.UploadID, len(cp.Parts), done, parts, tc.keep)
			}
			if _, ok := emu.Object(testBucket, key); ok {
				t.Fatal("the cut upload stored an object")
			}
			if got := emu.count("UploadPart"); got != tc.keep {
				t.Fatalf("%d UploadPart requests reached the emulator before the cut, want %d", got, tc.keep)
			}
			b := bucketAt(t, emu.url, "cn-hangzhou", testAK, testSK, tc.auth)
			listed, err := b.ListUploadedParts(oss.InitiateMultipartUploadResult{Bucket: testBucket, Key: key, UploadID: cp.UploadID})
			if err != nil || len(listed.UploadedParts) != tc.keep {
				t.Fatalf("ListParts of the cut upload: %v %+v", err, listed.UploadedParts)
			}

			if err := b.UploadFile(key, src, partSize, oss.Routines(tc.routines), oss.Checkpoint(true, cpPath)); err != nil {
				t.Fatalf("resumed UploadFile: %v", err)
			}
			if got, want := emu.count("UploadPart"), parts; got != want {
				t.Errorf("UploadPart requests in all: %d, want %d (each part once)", got, want)
			}
			if got := emu.count("InitiateMultipartUpload"); got != 1 {
				t.Errorf("InitiateMultipartUpload requests: %d, want 1 (the resumed upload reuses it)", got)
			}
			if got := emu.count("CompleteMultipartUpload"); got != 1 {
				t.Errorf("CompleteMultipartUpload requests: %d, want 1", got)
			}
			obj, ok := emu.Object(testBucket, key)
			if !ok || !bytes.Equal(obj.Data, data) || obj.Type != "Multipart" || !strings.HasSuffix(obj.ETag, "-"+strconv.Itoa(parts)+`"`) {
				t.Fatalf("stored: ok=%v %d bytes type %s etag %s", ok, len(obj.Data), obj.Type, obj.ETag)
			}
			if _, err := os.Stat(cpPath); !os.IsNotExist(err) {
				t.Errorf("the checkpoint file is still there after completion: %v", err)
			}
		})
	}
}
