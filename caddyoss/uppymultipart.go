package caddyoss

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// uppyTarget checks the key and upload id of a request on an existing
// upload: the key must be below the caller's key prefix and the upload id
// sealed for that key. It returns the OSS upload to act on.
func (u *uppyRoutes) uppyTarget(r *http.Request, sealed string) (oss.InitiateMultipartUploadResult, error) {
	var imur oss.InitiateMultipartUploadResult
	key := queryValues(r.URL.RawQuery, "key")[0]
	if key == "" {
		return imur, caddyhttp.Error(http.StatusBadRequest, errors.New("key is required"))
	}
	if err := checkKeyPart(key); err != nil || strings.HasSuffix(key, "/") {
		return imur, caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("key %q is not a valid object key", key))
	}
	prefix, err := u.keyPrefix(replacer(r))
	if err != nil {
		return imur, u.forbidden(r, err)
	}
	if !strings.HasPrefix(key, prefix) {
		return imur, u.forbidden(r, fmt.Errorf("key %q is outside your upload prefix", key))
	}
	ossID, err := u.openUploadID(r.Context(), key, sealed)
	if err != nil {
		if errors.Is(err, errSealKey) {
			return imur, u.unavailable(r, "reading the upload id key", err)
		}
		return imur, u.forbidden(r, err)
	}
	// With a quota, the multipart upload's reservation is sealed too,
	// after a '~' (see serveUppyCreate).
	ossID, _ = splitSealedReservation(ossID)
	imur.Bucket, imur.Key, imur.UploadID = u.Bucket, key, ossID
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
func (u *uppyRoutes) serveUppyCreate(w http.ResponseWriter, r *http.Request) error {
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
	hu := *r.URL
	hu.RawQuery = q.Encode()
	hr.URL = &hu
	up := upload{route: signRouteUppy}
	if err := u.prepareUpload(w, hr, &up); err != nil {
		return err
	}
	reservation, err := u.reserveMultipart(w, r, &up)
	if err != nil {
		return err
	}
	opts := []oss.Option{
		oss.ObjectACL(oss.ACLDefault),
		oss.ObjectStorageClass(oss.StorageClassType(u.StorageClass)),
		oss.WithContext(r.Context()),
	}
	if up.hints.contentType != "" {
		opts = append(opts, oss.ContentType(up.hints.contentType))
	}
	imur, err := u.bucket.InitiateMultipartUpload(up.key, opts...)
	if err != nil {
		return u.ossFailed(r, "starting the multipart upload", err)
	}
	ossID := imur.UploadID
	if reservation != "" {
		ossID += "~" + reservation // sealed with it, for the completion's callback
	}
	sealed, err := u.sealUploadID(r.Context(), up.key, ossID)
	if err != nil {
		// Nobody can use the upload without its sealed id.
		_ = u.bucket.AbortMultipartUpload(imur)
		return u.unavailable(r, "sealing the upload id", err)
	}
	u.logger.Debug("multipart upload started", zapKey(up.key), zapRemote(r))
	return writeObject(w, http.StatusOK, func(o *jsonw.Object) {
		o.Str("key", up.key)
		o.Str("uploadId", sealed)
		o.Str("bucket", u.Bucket)
	})
}

// listAllParts lists every uploaded part of an upload, page by page.
func (u *uppyRoutes) listAllParts(ctx context.Context, imur oss.InitiateMultipartUploadResult) ([]oss.UploadedPart, error) {
	var parts []oss.UploadedPart
	marker := 0
	for page := 0; page <= maxPartNumber/maxPartsPage; page++ {
		res, err := u.bucket.ListUploadedParts(imur, oss.MaxParts(maxPartsPage),
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
func (u *uppyRoutes) serveUppyList(w http.ResponseWriter, r *http.Request, sealed string) error {
	imur, err := u.uppyTarget(r, sealed)
	if err != nil {
		return err
	}
	parts, err := u.listAllParts(r.Context(), imur)
	if err != nil {
		return u.ossFailed(r, "listing the parts", err)
	}
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	b := append(*bp, '[')
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		o := jsonw.Object{B: b}
		o.Open()
		o.Int("PartNumber", int64(p.PartNumber))
		o.Str("ETag", p.ETag)
		o.Int("Size", int64(p.Size))
		o.Str("LastModified", p.LastModified.UTC().Format(time.RFC3339))
		o.Close()
		b = o.B
	}
	b = append(b, ']')
	*bp = b
	return writeJSON(w, http.StatusOK, b)
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
func (u *uppyRoutes) signPartURL(imur oss.InitiateMultipartUploadResult, c osssign.Credentials, n int) string {
	expires := u.urlLifetime(c)
	part := strconv.Itoa(n)
	if u.SignatureVersion == osssign.V4 {
		return u.signer.V4URL(osssign.V4URL{
			BaseURL: u.uploadURL, Bucket: u.Bucket, Region: u.Region, Key: imur.Key,
			Expires: expires, Now: u.now(),
			Params: [][2]string{{"partNumber", part}, {"uploadId", imur.UploadID}},
		}, c)
	}
	return string(u.signer.AppendV1URL(nil, http.MethodPut, osssign.V1URL{
		BaseURL: u.uploadURL, Bucket: u.Bucket, Key: imur.Key, Expires: u.now().Add(expires),
		Params: [][2]string{{"partNumber", part}, {"uploadId", imur.UploadID}},
	}, c))
}

// serveUppySignPart answers GET <uppy_path>/s3/multipart/:uploadId/:partNumber?key=
// with a presigned UploadPart URL.
func (u *uppyRoutes) serveUppySignPart(w http.ResponseWriter, r *http.Request, sealed, partNumber string) error {
	n, err := parsePartNumber(partNumber)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	imur, c, err := u.partSigningTarget(w, r, sealed)
	if err != nil {
		return err
	}
	signed := u.signPartURL(imur, c, n)
	return writeObject(w, http.StatusOK, func(o *jsonw.Object) {
		o.Str("url", signed)
		o.Int("expires", int64(u.urlLifetime(c)/time.Second))
	})
}

// serveUppyBatch answers GET <uppy_path>/s3/multipart/:uploadId/batch?key=&partNumbers=1,2
// with {"presignedUrls": {"1": url, ...}}, the form older Uppy clients use.
func (u *uppyRoutes) serveUppyBatch(w http.ResponseWriter, r *http.Request, sealed string) error {
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
	imur, c, err := u.partSigningTarget(w, r, sealed)
	if err != nil {
		return err
	}
	return writeObject(w, http.StatusOK, func(o *jsonw.Object) {
		o.Object("presignedUrls", func(urls *jsonw.Object) {
			for _, n := range numbers {
				urls.Str(strconv.Itoa(n), u.signPartURL(imur, c, n))
			}
		})
	})
}

// partSigningTarget is what the part-signing routes check before they
// sign: the upload (uppyTarget) and the server's credentials.
func (u *uppyRoutes) partSigningTarget(w http.ResponseWriter, r *http.Request, sealed string) (oss.InitiateMultipartUploadResult, osssign.Credentials, error) {
	imur, err := u.uppyTarget(r, sealed)
	if err != nil {
		return imur, osssign.Credentials{}, err
	}
	c, err := u.creds.get()
	if err != nil {
		return imur, c, u.credentialsUnavailable(w, r, err)
	}
	return imur, c, nil
}
