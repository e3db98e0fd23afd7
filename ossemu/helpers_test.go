package ossemu_test

// Fixtures and helpers the emulator's test files share: the emulator with
// its test keys, SDK and STS clients, a recording callback server, PostObject
// forms and raw requests.

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

func createFile(path string) (*os.File, error) { return os.Create(path) }

func hmacSHA1(secret, msg string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func itoa(n int) string { return strconv.Itoa(n) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func xmlUnmarshal(b []byte, v any) error { return xml.Unmarshal(b, v) }

const (
	testBucket = "examplebucket"
	testAK     = "LTAI5tEmulatorKey"
	testSK     = "emulator-secret-0123456789"
	testRole   = "acs:ram::1234567890123456:role/uploader"
)

func startEmu(t *testing.T, opts ossemu.Options) *ossemu.Emulator {
	t.Helper()
	if opts.Buckets == nil {
		opts.Buckets = []string{testBucket}
	}
	if opts.AccessKeys == nil {
		opts.AccessKeys = map[string]string{testAK: testSK}
	}
	if opts.Roles == nil {
		opts.Roles = []ossemu.Role{{ARN: testRole, MaxSessionDuration: 2 * time.Hour}}
	}
	emu, err := ossemu.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

func ossBucket(t *testing.T, emu *ossemu.Emulator, ak, sk string, opts ...oss.ClientOption) *oss.Bucket {
	t.Helper()
	return bucketAt(t, emu.Endpoint(), emu.Region(), ak, sk, opts...)
}

// bucketAt is an SDK client of testBucket at endpoint, path style.
func bucketAt(t *testing.T, endpoint, region, ak, sk string, opts ...oss.ClientOption) *oss.Bucket {
	t.Helper()
	opts = append([]oss.ClientOption{oss.ForcePathStyle(true), oss.Region(region)}, opts...)
	client, err := oss.New(endpoint, ak, sk, opts...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.Bucket(testBucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authVersions are the SDK's two signature versions, for the tests that
// run in both.
var authVersions = []struct {
	name string
	opt  oss.ClientOption
}{{"V1", oss.AuthVersion(oss.AuthV1)}, {"V4", oss.AuthVersion(oss.AuthV4)}}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func serviceCode(t *testing.T, err error) (int, string) {
	t.Helper()
	var se oss.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("want an OSS ServiceError, got %T %v", err, err)
	}
	return se.StatusCode, se.Code
}

// stsClient is an STS client signing with a permanent key.
func stsClient(t *testing.T, emu *ossemu.Emulator, ak, sk string) *sts.Client {
	t.Helper()
	return stsClientWithToken(t, emu, ak, sk, "")
}

const sessionPolicy = `{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:PutObject","oss:GetObject","oss:ListParts","oss:AbortMultipartUpload"],"Resource":["acs:oss:*:*:examplebucket/user/eric/*"]}]}`

func assumeRole(t *testing.T, emu *ossemu.Emulator, policy string) *sts.AssumeRoleResponseBodyCredentials {
	t.Helper()
	req := &sts.AssumeRoleRequest{
		RoleArn:         tea.String(testRole),
		RoleSessionName: tea.String("web-upload-42"),
		DurationSeconds: tea.Int64(3600),
	}
	if policy != "" {
		req.Policy = tea.String(policy)
	}
	resp, err := stsClient(t, emu, testAK, testSK).AssumeRole(req)
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := resp.Body.Credentials
	if !strings.HasPrefix(tea.StringValue(c.AccessKeyId), "STS.") || tea.StringValue(c.SecurityToken) == "" {
		t.Fatalf("credentials %+v", c)
	}
	exp, err := time.Parse(time.RFC3339, tea.StringValue(c.Expiration))
	if err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Fatalf("Expiration %s (%v)", tea.StringValue(c.Expiration), err)
	}
	return c
}

func writeFile(path string, data []byte) error {
	f, err := createFile(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// callbackServer records callbacks and answers with answer (status, body).
type callbackServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*recordedCallback
	status   int
	answer   string
	delay    time.Duration
}

type recordedCallback struct {
	uri    string
	header http.Header
	body   []byte
}

func newCallbackServer(t *testing.T, status int, answer string) *callbackServer {
	t.Helper()
	cs := &callbackServer{status: status, answer: answer}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cs.mu.Lock()
		cs.requests = append(cs.requests, &recordedCallback{r.URL.RequestURI(), r.Header.Clone(), body})
		cs.mu.Unlock()
		if cs.delay > 0 {
			time.Sleep(cs.delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(cs.status)
		io.WriteString(w, cs.answer)
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *callbackServer) last(t *testing.T) *recordedCallback {
	t.Helper()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.requests) == 0 {
		t.Fatal("no callback received")
	}
	return cs.requests[len(cs.requests)-1]
}

func b64JSON(v any) string {
	b, _ := json.Marshal(v)
	return base64.StdEncoding.EncodeToString(b)
}

// verifyCallback checks a callback's signature with the key its
// x-oss-pub-key-url points at, fetched over HTTP.
func verifyCallback(t *testing.T, cb *recordedCallback) {
	t.Helper()
	keyURL, err := base64.StdEncoding.DecodeString(cb.header.Get("x-oss-pub-key-url"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(string(keyURL))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("no PEM at %s", keyURL)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	path, query, hasQuery := strings.Cut(cb.uri, "?")
	decoded, _ := url.PathUnescape(path)
	msg := decoded
	if hasQuery {
		msg += "?" + query
	}
	msg += "\n" + string(cb.body)
	sum := md5.Sum([]byte(msg))
	sig, _ := base64.StdEncoding.DecodeString(cb.header.Get("Authorization"))
	if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.MD5, sum[:], sig); err != nil {
		t.Fatalf("callback signature does not verify: %v", err)
	}
	bodySum := md5.Sum(cb.body)
	if cb.header.Get("Content-MD5") != base64.StdEncoding.EncodeToString(bodySum[:]) {
		t.Fatal("Content-MD5 does not match the callback body")
	}
	for _, h := range []string{"x-oss-bucket", "x-oss-request-id", "Date", "x-oss-tag"} {
		if cb.header.Get(h) == "" {
			t.Errorf("callback header %s missing", h)
		}
	}
}

type formField struct{ name, value string }

func postObject(t *testing.T, url string, fields []formField, fileName, fileType string, data []byte) (*http.Response, string) {
	t.Helper()
	return postObjectWithHeader(t, url, nil, fields, fileName, fileType, data)
}

// postObjectWithHeader is postObject with extra request headers.
func postObjectWithHeader(t *testing.T, url string, header http.Header, fields []formField, fileName, fileType string, data []byte) (*http.Response, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if f.name == "file" {
			h := make(map[string][]string)
			h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + fileName + `"`}
			h["Content-Type"] = []string{fileType}
			w, _ := mw.CreatePart(h)
			w.Write(data)
			continue
		}
		mw.WriteField(f.name, f.value)
	}
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, url, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// v1PostFields signs a policy the way the PostObject V1 documentation
// describes; used only to exercise form handling (ali-oss covers the
// signature itself).
func v1PostFields(t *testing.T, policy map[string]any) []formField {
	t.Helper()
	p := b64JSON(policy)
	return []formField{{"OSSAccessKeyId", testAK}, {"policy", p}, {"Signature", hmacSHA1(testSK, p)}}
}

// rawRequest sends a request as it is, unsigned unless its URL or headers
// carry a signature, and returns the status, the OSS error code (from the
// body, or from x-oss-err for HEAD) and the response.
func rawRequest(t *testing.T, method, url string, header http.Header, body string) (int, string, *http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	errXML := got
	if method == http.MethodHead {
		errXML, _ = base64.StdEncoding.DecodeString(resp.Header.Get("x-oss-err"))
	}
	var e struct{ Code string }
	_ = xmlUnmarshal(errXML, &e)
	return resp.StatusCode, e.Code, resp, string(got)
}

func policyExpiring() string {
	return time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
}

// stsClientWithToken is an STS client signing with STS credentials, as a
// server on an ECS RAM role or an OIDC role does.
func stsClientWithToken(t *testing.T, emu *ossemu.Emulator, ak, sk, token string) *sts.Client {
	t.Helper()
	cfg := &openapi.Config{
		AccessKeyId:     tea.String(ak),
		AccessKeySecret: tea.String(sk),
		Endpoint:        tea.String(emu.Addr()),
		Protocol:        tea.String("http"),
		RegionId:        tea.String(emu.Region()),
	}
	if token != "" {
		cfg.SecurityToken = tea.String(token)
	}
	c, err := sts.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uploadParts uploads data to the multipart upload in parts of 100 KiB,
// numbered from 1.
func uploadParts(t *testing.T, b *oss.Bucket, imur oss.InitiateMultipartUploadResult, data []byte) []oss.UploadPart {
	t.Helper()
	var parts []oss.UploadPart
	for i, off := 1, 0; off < len(data); i, off = i+1, off+100<<10 {
		end := min(off+100<<10, len(data))
		p, err := b.UploadPart(imur, bytes.NewReader(data[off:end]), int64(end-off), i)
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i, err)
		}
		parts = append(parts, p)
	}
	return parts
}

// preflight sends a CORS preflight for an object of testBucket.
func preflight(t *testing.T, emu *ossemu.Emulator, origin, method, headers string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, emu.Endpoint()+"/"+testBucket+"/k", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		req.Header.Set("Access-Control-Request-Headers", headers)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
