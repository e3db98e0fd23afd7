package caddyoss

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// An upload id handed to Uppy is OSS's upload id sealed to its bucket and
// key: "<oss upload id>.<base64url HMAC-SHA256, 18 bytes>". A caller can
// then act only on uploads this site created, for the key they were
// created for, without asking OSS first.
const uploadIDMACBytes = 18

// sealUploadID returns the upload id Uppy gets for OSS's id of key.
func (h *Handler) sealUploadID(ctx context.Context, key, ossID string) (string, error) {
	var sum [sha256.Size]byte
	mac, err := h.uploadIDMAC(ctx, sum[:0], key, ossID)
	if err != nil {
		return "", err
	}
	return ossID + "." + base64.RawURLEncoding.EncodeToString(mac), nil
}

// openUploadID returns OSS's upload id from a sealed one, or an error when
// the seal is not this site's for key.
func (h *Handler) openUploadID(ctx context.Context, key, sealed string) (string, error) {
	i := strings.LastIndexByte(sealed, '.')
	// 18 bytes are exactly 24 base64 characters, without padding or spare
	// bits: one spelling per seal.
	if i <= 0 || len(sealed)-i-1 != base64.RawURLEncoding.EncodedLen(uploadIDMACBytes) {
		return "", errors.New("uploadId was not issued by this site")
	}
	ossID := sealed[:i]
	var got [uploadIDMACBytes]byte
	if _, err := base64.RawURLEncoding.Decode(got[:], []byte(sealed[i+1:])); err != nil {
		return "", errors.New("uploadId was not issued by this site")
	}
	var sum [sha256.Size]byte
	mac, err := h.uploadIDMAC(ctx, sum[:0], key, ossID)
	if err != nil {
		return "", err
	}
	if !hmac.Equal(got[:], mac) {
		return "", errors.New("uploadId does not belong to this key")
	}
	return ossID, nil
}

// uploadIDMAC appends the seal of (bucket, key, OSS id) to dst: the first
// 18 bytes of HMAC-SHA256 with the binding key, from a pool of keyed MACs.
func (h *Handler) uploadIDMAC(ctx context.Context, dst []byte, key, ossID string) ([]byte, error) {
	k, err := h.uppyKeys.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSealKey, err)
	}
	p := h.uppyKeys.macs.Load()
	if p == nil || !bytes.Equal(p.key, k) {
		p = newKeyedMACs(k)
		h.uppyKeys.macs.Store(p)
	}
	m := p.pool.Get().(hash.Hash)
	m.Reset()
	bp := getJSONBuf()
	b := append((*bp)[:0], "oss_upload uppy upload\x00"...)
	b = append(b, h.Bucket...)
	b = append(b, 0)
	b = append(b, key...)
	b = append(b, 0)
	b = append(b, ossID...)
	m.Write(b)
	*bp = b
	putJSONBuf(bp)
	dst = m.Sum(dst)
	p.pool.Put(m)
	return dst[:len(dst)-sha256.Size+uploadIDMACBytes], nil
}

// keyedMACs pools HMAC-SHA256 hashes keyed with one key.
type keyedMACs struct {
	key  []byte
	pool sync.Pool
}

func newKeyedMACs(key []byte) *keyedMACs {
	p := &keyedMACs{key: key}
	p.pool.New = func() any { return hmac.New(sha256.New, p.key) }
	return p
}

// errSealKey is returned when the sealing key cannot be read.
var errSealKey = errors.New("reading the upload id key failed")

// uppyTarget checks the key and upload id of a request on an existing
// upload: the key must be below the caller's key prefix and the upload id
// sealed for that key. It returns the OSS upload to act on.
func (h *Handler) uppyTarget(r *http.Request, sealed string) (oss.InitiateMultipartUploadResult, error) {
	var imur oss.InitiateMultipartUploadResult
	key := queryValues(r.URL.RawQuery, "key")[0]
	if key == "" {
		return imur, caddyhttp.Error(http.StatusBadRequest, errors.New("key is required"))
	}
	if err := checkKeyPart(key); err != nil || strings.HasSuffix(key, "/") {
		return imur, caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("key %q is not a valid object key", key))
	}
	prefix, err := h.keyPrefix(replacer(r))
	if err != nil {
		return imur, h.forbidden(r, err)
	}
	if !strings.HasPrefix(key, prefix) {
		return imur, h.forbidden(r, fmt.Errorf("key %q is outside your upload prefix", key))
	}
	ossID, err := h.openUploadID(r.Context(), key, sealed)
	if err != nil {
		if errors.Is(err, errSealKey) {
			return imur, h.unavailable(r, "reading the upload id key", err)
		}
		return imur, h.forbidden(r, err)
	}
	imur.Bucket, imur.Key, imur.UploadID = h.Bucket, key, ossID
	return imur, nil
}

// uppyCreateRequest is the body of POST <uppy_path>/s3/multipart.
type uppyCreateRequest struct {
	Filename string `json:"filename"`
	Type     string `json:"type"`
	// Metadata is accepted and not stored: what reaches the app comes
	// from the callback configuration.
	Metadata map[string]any `json:"metadata"`
}

// readUppyJSON decodes a JSON body of at most maxUppyBody bytes into v.
func readUppyJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUppyBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return caddyhttp.Error(http.StatusRequestEntityTooLarge, fmt.Errorf("the body is larger than %d bytes", maxUppyBody))
		}
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("reading the body: %v", err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("the body is not the expected JSON: %v", err))
	}
	if dec.More() {
		return caddyhttp.Error(http.StatusBadRequest, errors.New("the body has data after its JSON value"))
	}
	return nil
}

// serveUppyCreate answers POST <uppy_path>/s3/multipart: the server picks
// the key below the caller's prefix, checks the type against allow_types
// and starts the multipart upload.
func (h *Handler) serveUppyCreate(w http.ResponseWriter, r *http.Request) error {
	var req uppyCreateRequest
	if err := readUppyJSON(w, r, &req); err != nil {
		return err
	}
	// The hints are checked exactly as the other routes check their query.
	q := url.Values{}
	q.Set("filename", req.Filename)
	if req.Type != "" {
		q.Set("type", req.Type)
	}
	hr := r.WithContext(r.Context())
	u := *r.URL
	u.RawQuery = q.Encode()
	hr.URL = &u
	var up upload
	if err := h.prepareUpload(w, hr, &up); err != nil {
		return err
	}
	opts := []oss.Option{
		oss.ObjectACL(oss.ACLDefault),
		oss.ObjectStorageClass(oss.StorageClassType(h.StorageClass)),
		oss.WithContext(r.Context()),
	}
	if up.hints.contentType != "" {
		opts = append(opts, oss.ContentType(up.hints.contentType))
	}
	imur, err := h.uppyBucket.InitiateMultipartUpload(up.key, opts...)
	if err != nil {
		return h.ossFailed(r, "starting the multipart upload", err)
	}
	sealed, err := h.sealUploadID(r.Context(), up.key, imur.UploadID)
	if err != nil {
		// Nobody can use the upload without its sealed id.
		_ = h.uppyBucket.AbortMultipartUpload(imur)
		return h.unavailable(r, "sealing the upload id", err)
	}
	h.logger.Debug("multipart upload started", zapKey(up.key), zapRemote(r))
	return writeJSONObject(w, func(o *jsonObject) {
		o.str("key", up.key)
		o.str("uploadId", sealed)
		o.str("bucket", h.Bucket)
	})
}

// listAllParts lists every uploaded part of an upload, page by page.
func (h *Handler) listAllParts(ctx context.Context, imur oss.InitiateMultipartUploadResult) ([]oss.UploadedPart, error) {
	var parts []oss.UploadedPart
	marker := 0
	for page := 0; page <= maxPartNumber/maxPartsPage; page++ {
		res, err := h.uppyBucket.ListUploadedParts(imur, oss.MaxParts(maxPartsPage),
			oss.PartNumberMarker(marker), oss.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		parts = append(parts, res.UploadedParts...)
		if !res.IsTruncated {
			return parts, nil
		}
		next, err := strconv.Atoi(res.NextPartNumberMarker)
		if err != nil || next <= marker {
			return nil, fmt.Errorf("ListParts: bad NextPartNumberMarker %q", res.NextPartNumberMarker)
		}
		marker = next
	}
	return nil, errors.New("ListParts: more pages than 10000 parts need")
}

// serveUppyList answers GET <uppy_path>/s3/multipart/:uploadId?key= with
// every uploaded part, as Companion does.
func (h *Handler) serveUppyList(w http.ResponseWriter, r *http.Request, sealed string) error {
	imur, err := h.uppyTarget(r, sealed)
	if err != nil {
		return err
	}
	parts, err := h.listAllParts(r.Context(), imur)
	if err != nil {
		return h.ossFailed(r, "listing the parts", err)
	}
	bp := getJSONBuf()
	defer putJSONBuf(bp)
	b := append(*bp, '[')
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		o := jsonObject{b: b}
		o.open()
		o.int("PartNumber", int64(p.PartNumber))
		o.str("ETag", p.ETag)
		o.int("Size", int64(p.Size))
		o.str("LastModified", p.LastModified.UTC().Format(time.RFC3339))
		o.close()
		b = o.b
	}
	b = append(b, ']')
	*bp = b
	return writeJSONBytes(w, http.StatusOK, b)
}

// parsePartNumber reads a part number, 1..10000 as OSS allows.
func parsePartNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPartNumber {
		return 0, fmt.Errorf("part number must be an integer from 1 to %d, got %q", maxPartNumber, s)
	}
	return n, nil
}

// signPartURL presigns the UploadPart PUT of part n. No Content-Type is
// signed: Uppy sends parts without one.
func (h *Handler) signPartURL(imur oss.InitiateMultipartUploadResult, c creds, n int) string {
	expires := h.urlLifetime(c)
	part := strconv.Itoa(n)
	if h.SignatureVersion == sigV4 {
		return presignV4(presignV4Input{
			baseURL: h.uploadURL, bucket: h.Bucket, region: h.Region, key: imur.Key,
			expires: expires, now: h.now(),
			params: [][2]string{{"partNumber", part}, {"uploadId", imur.UploadID}},
		}, c, h.v4Keys)
	}
	return string(appendPresignV1(nil, presignV1Input{
		baseURL: h.uploadURL, bucket: h.Bucket, key: imur.Key, expires: h.now().Add(expires),
		params: [][2]string{{"partNumber", part}, {"uploadId", imur.UploadID}},
	}, c))
}

// serveUppySignPart answers GET <uppy_path>/s3/multipart/:uploadId/:partNumber?key=
// with a presigned UploadPart URL.
func (h *Handler) serveUppySignPart(w http.ResponseWriter, r *http.Request, sealed, partNumber string) error {
	n, err := parsePartNumber(partNumber)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	imur, c, err := h.partSigningTarget(w, r, sealed)
	if err != nil {
		return err
	}
	signed := h.signPartURL(imur, c, n)
	return writeJSONObject(w, func(o *jsonObject) {
		o.str("url", signed)
		o.int("expires", int64(h.urlLifetime(c)/time.Second))
	})
}

// serveUppyBatch answers GET <uppy_path>/s3/multipart/:uploadId/batch?key=&partNumbers=1,2
// with {"presignedUrls": {"1": url, ...}}, the form older Uppy clients use.
func (h *Handler) serveUppyBatch(w http.ResponseWriter, r *http.Request, sealed string) error {
	list := queryValues(r.URL.RawQuery, "partNumbers")[0]
	if list == "" {
		return caddyhttp.Error(http.StatusBadRequest, errors.New("partNumbers is required"))
	}
	var numbers []int
	seen := map[int]bool{}
	for _, s := range strings.Split(list, ",") {
		n, err := parsePartNumber(strings.TrimSpace(s))
		if err != nil {
			return caddyhttp.Error(http.StatusBadRequest, err)
		}
		if !seen[n] {
			seen[n] = true
			numbers = append(numbers, n)
		}
	}
	imur, c, err := h.partSigningTarget(w, r, sealed)
	if err != nil {
		return err
	}
	return writeJSONObject(w, func(o *jsonObject) {
		o.object("presignedUrls", func(u *jsonObject) {
			for _, n := range numbers {
				u.str(strconv.Itoa(n), h.signPartURL(imur, c, n))
			}
		})
	})
}

// partSigningTarget is what the part-signing routes check before they
// sign: the upload (uppyTarget) and the server's credentials.
func (h *Handler) partSigningTarget(w http.ResponseWriter, r *http.Request, sealed string) (oss.InitiateMultipartUploadResult, creds, error) {
	imur, err := h.uppyTarget(r, sealed)
	if err != nil {
		return imur, creds{}, err
	}
	c, err := h.creds.get()
	if err != nil {
		return imur, c, h.credentialsUnavailable(w, r, err)
	}
	return imur, c, nil
}

// uppyCompleteRequest is the body of POST .../complete.
type uppyCompleteRequest struct {
	Parts []struct {
		PartNumber int    `json:"PartNumber"`
		ETag       string `json:"ETag"`
	} `json:"parts"`
}

// serveUppyComplete answers POST <uppy_path>/s3/multipart/:uploadId/complete?key=.
// The parts' sizes come from OSS (ListParts), not from the client: over
// max_size or under min_size the upload is aborted. The callback, when one
// is configured, goes with CompleteMultipartUpload, so the app hears of
// the object as with every other mode.
func (h *Handler) serveUppyComplete(w http.ResponseWriter, r *http.Request, sealed string) error {
	imur, err := h.uppyTarget(r, sealed)
	if err != nil {
		return err
	}
	var req uppyCompleteRequest
	if err := readUppyJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Parts) == 0 || len(req.Parts) > maxPartNumber {
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("parts must list 1 to %d parts, got %d", maxPartNumber, len(req.Parts)))
	}
	parts := make([]oss.UploadPart, len(req.Parts))
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxPartNumber {
			return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("part number must be from 1 to %d, got %d", maxPartNumber, p.PartNumber))
		}
		if p.ETag == "" {
			return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("part %d has no ETag", p.PartNumber))
		}
		parts[i] = oss.UploadPart{PartNumber: p.PartNumber, ETag: p.ETag}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	for i := 1; i < len(parts); i++ {
		if parts[i].PartNumber == parts[i-1].PartNumber {
			return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("part %d is listed twice", parts[i].PartNumber))
		}
	}

	stored, err := h.listAllParts(r.Context(), imur)
	if err != nil {
		return h.ossFailed(r, "listing the parts", err)
	}
	byNumber := make(map[int]oss.UploadedPart, len(stored))
	for _, p := range stored {
		byNumber[p.PartNumber] = p
	}
	var total int64
	for _, p := range parts {
		s, ok := byNumber[p.PartNumber]
		if !ok {
			return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("part %d was not uploaded", p.PartNumber))
		}
		if !strings.EqualFold(strings.Trim(s.ETag, `"`), strings.Trim(p.ETag, `"`)) {
			return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("part %d: the ETag differs from what OSS stores", p.PartNumber))
		}
		total += int64(s.Size)
	}
	if h.MaxSize > 0 && total > h.MaxSize {
		return h.abortForLimit(r, imur, http.StatusRequestEntityTooLarge,
			fmt.Errorf("the upload is %d bytes, over max_size %d; it was aborted", total, h.MaxSize))
	}
	if total < h.MinSize {
		return h.abortForLimit(r, imur, http.StatusBadRequest,
			fmt.Errorf("the upload is %d bytes, under min_size %d; it was aborted", total, h.MinSize))
	}

	opts := []oss.Option{oss.WithContext(r.Context())}
	var answer []byte
	if h.callbackB64 != "" {
		custom, err := h.Callback.callbackVars(replacer(r))
		if err != nil {
			return h.forbidden(r, err)
		}
		vars, err := h.issueVars(r.Context(), custom, callback.ExactKey, imur.Key, h.now().Add(time.Duration(h.Expires)))
		if err != nil {
			return h.unavailable(r, "signing the callback binding", err)
		}
		opts = append(opts, oss.Callback(h.callbackB64), oss.CallbackResult(&answer))
		if v, err := callbackVarParam(vars); err != nil {
			return h.internalError(r, "encoding callback variables", err)
		} else if v != "" {
			opts = append(opts, oss.CallbackVar(v))
		}
	}
	if _, err := h.uppyBucket.CompleteMultipartUpload(imur, parts, opts...); err != nil {
		return h.ossFailed(r, "completing the upload", err)
	}
	h.logger.Info("multipart upload completed", zapKey(imur.Key), zap.Int64("size", total), zapRemote(r))
	return writeJSONObject(w, func(o *jsonObject) {
		o.str("location", h.uploadURL+"/"+string(uriEncode(nil, imur.Key, true)))
		o.str("key", imur.Key)
		o.str("bucket", h.Bucket)
		if len(answer) > 0 && json.Valid(answer) {
			o.raw("callback", answer)
		}
	})
}

// abortForLimit aborts an upload that broke a limit and returns the error
// the client gets.
func (h *Handler) abortForLimit(r *http.Request, imur oss.InitiateMultipartUploadResult, status int, why error) error {
	if err := h.uppyBucket.AbortMultipartUpload(imur, oss.WithContext(r.Context())); err != nil {
		h.logger.Error("aborting an upload over the limits failed", zapKey(imur.Key), zap.Error(err), zapRemote(r))
	}
	h.logger.Info("multipart upload refused", zapKey(imur.Key), zap.Error(why), zapRemote(r))
	return caddyhttp.Error(status, why)
}

// serveUppyAbort answers DELETE <uppy_path>/s3/multipart/:uploadId?key=.
func (h *Handler) serveUppyAbort(w http.ResponseWriter, r *http.Request, sealed string) error {
	imur, err := h.uppyTarget(r, sealed)
	if err != nil {
		return err
	}
	if err := h.uppyBucket.AbortMultipartUpload(imur, oss.WithContext(r.Context())); err != nil {
		return h.ossFailed(r, "aborting the upload", err)
	}
	return writeJSONBytes(w, http.StatusOK, []byte("{}"))
}

// ossFailed turns an OSS error of a server-side call into the client's
// error: OSS's verdict on the client's request keeps its meaning (no such
// upload, an invalid part) without OSS's internals; anything else is a 502
// and a log line.
func (h *Handler) ossFailed(r *http.Request, doing string, err error) error {
	code, status := ossErrorCode(err)
	switch code {
	case "NoSuchUpload":
		return caddyhttp.Error(http.StatusNotFound, errors.New("no such upload: it was completed, aborted or never started"))
	case "InvalidPart":
		return caddyhttp.Error(http.StatusBadRequest, errors.New("a listed part was not uploaded or its ETag differs"))
	case "InvalidPartOrder":
		return caddyhttp.Error(http.StatusBadRequest, errors.New("parts must be listed in ascending order"))
	case "EntityTooSmall":
		return caddyhttp.Error(http.StatusBadRequest, errors.New("every part but the last must be at least 100 KB"))
	case "FileAlreadyExists":
		return caddyhttp.Error(http.StatusConflict, errors.New("an object with this key already exists"))
	case "CallbackFailed":
		h.logger.Warn(doing+": the upload was stored but its callback failed", zap.String("oss_code", code), zapRemote(r))
		return caddyhttp.Error(http.StatusBadGateway, errors.New("the upload was stored but the site's callback failed"))
	}
	if errors.Is(err, context.Canceled) {
		return caddyhttp.Error(499, err)
	}
	h.logger.Error(doing+" failed", zap.String("oss_code", code), zap.Int("oss_status", status), zap.Error(err), zapRemote(r))
	return caddyhttp.Error(http.StatusBadGateway, errors.New(doing+" failed"))
}
