package caddyoss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

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
func (u *uppyRoutes) serveUppyComplete(w http.ResponseWriter, r *http.Request, sealed string) error {
	imur, err := u.uppyTarget(r, sealed)
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

	stored, err := u.listAllParts(r.Context(), imur)
	if err != nil {
		return u.ossFailed(r, "listing the parts", err)
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
	if u.MaxSize > 0 && total > u.MaxSize {
		return u.abortForLimit(r, imur, http.StatusRequestEntityTooLarge,
			fmt.Errorf("the upload is %d bytes, over max_size %d; it was aborted", total, u.MaxSize))
	}
	if total < u.MinSize {
		return u.abortForLimit(r, imur, http.StatusBadRequest,
			fmt.Errorf("the upload is %d bytes, under min_size %d; it was aborted", total, u.MinSize))
	}

	opts := []oss.Option{oss.WithContext(r.Context())}
	var answer []byte
	var token string
	if u.issuesVars() {
		custom, err := u.Callback.callbackVars(replacer(r))
		if err != nil {
			return u.forbidden(r, err)
		}
		if err := u.multipartQuotaVars(r, &custom, sealed); err != nil {
			return err
		}
		vars, err := u.issueVars(r.Context(), custom, callback.ExactKey, imur.Key, u.now().Add(time.Duration(u.Expires)))
		if err != nil {
			return u.unavailable(r, "signing the callback binding", err)
		}
		token = u.confirmToken(vars)
		if u.callbackB64 != "" {
			opts = append(opts, oss.Callback(u.callbackB64), oss.CallbackResult(&answer))
			if v, err := callbackVarParam(vars); err != nil {
				return u.internalError(r, "encoding callback variables", err)
			} else if v != "" {
				opts = append(opts, oss.CallbackVar(v))
			}
		}
	}
	if _, err := u.bucket.CompleteMultipartUpload(imur, parts, opts...); err != nil {
		if code, _ := ossErrorCode(err); code == "CallbackFailed" && u.deletedSince(r, imur.Key) {
			// The callback route refused the stored upload and deleted
			// it: outside the limits, or over the quota.
			return caddyhttp.Error(http.StatusForbidden,
				errors.New("the site refused the upload once it was stored (outside the limits or over the upload quota) and deleted it"))
		}
		return u.ossFailed(r, "completing the upload", err)
	}
	u.logger.Info("multipart upload completed", zapKey(imur.Key), zap.Int64("size", total), zapRemote(r))
	return writeObject(w, http.StatusOK, func(o *jsonw.Object) {
		o.Str("location", u.uploadURL+"/"+string(osssign.AppendURIEncode(nil, imur.Key, true)))
		o.Str("key", imur.Key)
		o.Str("bucket", u.Bucket)
		if len(answer) > 0 && json.Valid(answer) {
			o.Raw("callback", answer)
		}
		u.appendConfirm(o, "confirm", token)
	})
}

// deletedSince reports whether OSS no longer has the object key that a
// completion just stored: its callback refused it and had it deleted.
func (u *uppyRoutes) deletedSince(r *http.Request, key string) bool {
	_, err := u.bucket.GetObjectDetailedMeta(key, oss.WithContext(r.Context()))
	var se oss.ServiceError
	return errors.As(err, &se) && se.StatusCode == http.StatusNotFound
}

// abortForLimit aborts an upload that broke a limit and returns the error
// the client gets.
func (u *uppyRoutes) abortForLimit(r *http.Request, imur oss.InitiateMultipartUploadResult, status int, why error) error {
	if err := u.bucket.AbortMultipartUpload(imur, oss.WithContext(r.Context())); err != nil {
		u.logger.Error("aborting an upload over the limits failed", zapKey(imur.Key), zap.Error(err), zapRemote(r))
	}
	u.logger.Info("multipart upload refused", zapKey(imur.Key), zap.Error(why), zapRemote(r))
	return caddyhttp.Error(status, why)
}

// serveUppyAbort answers DELETE <uppy_path>/s3/multipart/:uploadId?key=.
func (u *uppyRoutes) serveUppyAbort(w http.ResponseWriter, r *http.Request, sealed string) error {
	imur, err := u.uppyTarget(r, sealed)
	if err != nil {
		return err
	}
	if err := u.bucket.AbortMultipartUpload(imur, oss.WithContext(r.Context())); err != nil {
		return u.ossFailed(r, "aborting the upload", err)
	}
	return writeJSON(w, http.StatusOK, []byte("{}"))
}

// ossFailed turns an OSS error of a server-side call into the client's
// error: OSS's verdict on the client's request keeps its meaning (no such
// upload, an invalid part) without OSS's internals; anything else is a 502
// and a log line.
func (u *uppyRoutes) ossFailed(r *http.Request, doing string, err error) error {
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
		u.logger.Warn(doing+": the upload was stored but its callback failed", zap.String("oss_code", code), zapRemote(r))
		return caddyhttp.Error(http.StatusBadGateway, errors.New("the upload was stored but the site's callback failed"))
	}
	if errors.Is(err, context.Canceled) {
		return caddyhttp.Error(499, err)
	}
	u.logger.Error(doing+" failed", zap.String("oss_code", code), zap.Int("oss_status", status), zap.Error(err), zapRemote(r))
	return caddyhttp.Error(http.StatusBadGateway, errors.New(doing+" failed"))
}
