package caddyoss

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// defaultPresignType is signed when the client names no type, default_type
// is unset and the filename's extension has no known type: the response's
// headers tell it to send exactly this.
const defaultPresignType = "application/octet-stream"

// Answers of the presign route (presign_format).
const (
	presignFormatJSON = "json" // {"url","method","headers","key","expires"}
	presignFormatURL  = "url"  // the bare URL as text/plain
)

// presignDefaultType is the Content-Type the presign route signs for a
// request that names none: default_type (its placeholders expanded; when
// it expands to nothing, as if unset), else the type of the filename's
// extension without parameters, else application/octet-stream.
func (h *Handler) presignDefaultType(r *http.Request, filename string) (string, error) {
	if t := h.DefaultType; t != "" {
		if !strings.Contains(t, "{") {
			return t, nil // checked at load
		}
		if t = strings.TrimSpace(replacer(r).ReplaceAll(t, "")); t != "" {
			if err := checkMediaType(t); err != nil {
				return "", fmt.Errorf("default_type: %w", err)
			}
			return t, nil
		}
	}
	if i := strings.LastIndexAny(filename, `/\`); i >= 0 {
		filename = filename[i+1:]
	}
	if ext := path.Ext(filename); ext != "" {
		if mt, _, err := mime.ParseMediaType(mime.TypeByExtension(ext)); err == nil {
			return mt, nil
		}
	}
	return defaultPresignType, nil
}

// checkMediaType checks a Content-Type that will be signed: a media type
// with a subtype, optional parameters, no wildcard, at most 255 bytes.
func checkMediaType(t string) error {
	mt, _, err := mime.ParseMediaType(t)
	if err != nil || !strings.Contains(mt, "/") || strings.Contains(mt, "*") || len(t) > 255 {
		return fmt.Errorf("%q is not a media type such as image/png", t)
	}
	return nil
}

// checkDefaultType checks default_type at load: a media type that
// allow_types permits. One with placeholders is checked per request.
func checkDefaultType(t string, allowTypes []string) error {
	if t == "" || strings.Contains(t, "{") {
		return nil
	}
	if err := checkMediaType(t); err != nil {
		return fmt.Errorf("default_type: %w", err)
	}
	if len(allowTypes) > 0 && !typeAllowed(allowTypes, t) {
		return fmt.Errorf("default_type: %q is not in allow_types (%s), so every presigned URL signed for it would be refused", t, strings.Join(allowTypes, ", "))
	}
	return nil
}

// checkPresignFormat checks presign_format.
func checkPresignFormat(f string) error {
	if f != "" && f != presignFormatJSON && f != presignFormatURL {
		return fmt.Errorf("presign_format: must be json or url, got %q", f)
	}
	return nil
}

// servePresign answers GET <presign_path>?filename=&type= with a presigned
// PUT URL, or just the URL for clients that accept only text/plain.
func (h *Handler) servePresign(w http.ResponseWriter, r *http.Request) error {
	up := upload{route: signRoutePresign}
	if err := h.prepareUpload(w, r, &up); err != nil {
		return err
	}
	expires := h.urlLifetime(up.creds)
	if h.quota != nil {
		// A presigned PUT cannot hold OSS to a size: it reserves max_size.
		if err := h.reserveQuota(w, r, &up.custom, up.prefix, h.MaxSize, h.now().Add(expires), up.route); err != nil {
			return err
		}
	}
	params, token, err := h.presignParams(r, &up, expires)
	if err != nil {
		return err
	}
	// The URL is signed straight into the answer's buffer.
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	b := append((*bp)[:0], `{"url":"`...)
	urlStart := len(b)
	now := h.now()
	b = h.appendPresignedURL(b, &up, expires, now, params)
	*bp = b
	expiration := now.Add(expires)
	if ce := h.logger.Check(zapcore.DebugLevel, "presigned URL signed"); ce != nil {
		h.logSigned(ce, r, up.key, expiration)
	}

	w.Header().Add("Vary", "Accept") // the answer's form depends on Accept
	if h.answersBareURL(r) {
		setAnswerHeaders(w.Header(), "text/plain; charset=utf-8", len(b)-urlStart)
		_, err := w.Write(b[urlStart:])
		return err
	}
	// The URL is percent-encoded but for upload_url, which may need
	// escaping in JSON.
	if !h.uploadURLPlain && !jsonw.Plain(b[urlStart:]) {
		signed := string(b[urlStart:])
		b = jsonw.AppendStringContent(b[:urlStart], signed)
	}
	b = append(b, `","method":"PUT","headers":{"Content-Type":`...)
	b = jsonw.AppendString(b, up.hints.contentType)
	b = append(b, `},"key":`...)
	b = jsonw.AppendString(b, up.key)
	b = append(b, `,"expires":"`...)
	b = osssign.AppendUTCRFC3339(b, expiration)
	b = append(b, '"')
	b = h.appendConfirmMember(b, token)
	b = append(b, '}')
	*bp = b
	return writeJSON(w, http.StatusOK, b)
}

// presignParams returns the signed query parameters besides the
// signature's own (the callback and its variables, when OSS is asked for
// a callback) and the upload's confirm token ("" when the confirm route
// is off).
func (h *Handler) presignParams(r *http.Request, up *upload, expires time.Duration) ([][2]string, string, error) {
	if !h.issuesVars() {
		return nil, "", nil
	}
	vars, err := h.issueVars(r.Context(), up.custom, callback.ExactKey, up.key, h.now().Add(expires))
	if err != nil {
		return nil, "", h.unavailable(r, "signing the callback binding", err)
	}
	token := h.confirmToken(vars)
	if h.callbackB64 == "" {
		return nil, token, nil
	}
	params := [][2]string{{"callback", h.callbackB64}}
	if v, err := callbackVarParam(vars); err != nil {
		return nil, "", h.internalError(r, "encoding callback variables", err)
	} else if v != "" {
		params = append(params, [2]string{"callback-var", v})
	}
	return params, token, nil
}

// appendPresignedURL appends the presigned PUT URL of up, for its
// Content-Type (presignDefaultType's when none was named). Not inlined, so
// that its inputs take stack room only while it runs.
//
//go:noinline
func (h *Handler) appendPresignedURL(b []byte, up *upload, expires time.Duration, now time.Time, params [][2]string) []byte {
	if h.SignatureVersion == osssign.V4 {
		return h.signer.AppendV4URL(b, osssign.V4URL{
			BaseURL: h.uploadURL, Bucket: h.Bucket, Region: h.Region, Key: up.key,
			ContentType: up.hints.contentType, Expires: expires, Now: now, Params: params,
		}, up.creds)
	}
	return h.signer.AppendV1URL(b, http.MethodPut, osssign.V1URL{
		BaseURL: h.uploadURL, Bucket: h.Bucket, Key: up.key,
		ContentType: up.hints.contentType, Expires: now.Add(expires), Params: params,
	}, up.creds)
}

// answersBareURL reports whether the presign route answers r with the bare
// URL: with presign_format url unless the client asks for JSON and not for
// text/plain; with json (the default) only when it asks for text/plain and
// not for JSON.
func (h *Handler) answersBareURL(r *http.Request) bool {
	if h.PresignFormat == presignFormatURL {
		return !wantsJSON(r)
	}
	return wantsPlainText(r)
}

// wantsJSON reports whether the client accepts JSON but not text/plain, as
// a client written for the JSON answer (the sandbox page) says.
func wantsJSON(r *http.Request) bool {
	accept := strings.ToLower(r.Header.Get("Accept"))
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/plain")
}

// wantsPlainText reports whether the client accepts text/plain but not JSON,
// as Alibaba's sample client (which reads response.text()) does.
func wantsPlainText(r *http.Request) bool {
	accept := strings.ToLower(r.Header.Get("Accept"))
	return strings.Contains(accept, "text/plain") && !strings.Contains(accept, "application/json")
}

// urlLifetime is the lifetime of a presigned URL signed with c: expires,
// capped at 12 h for V4 URLs signed with STS credentials.
func (h *Handler) urlLifetime(c osssign.Credentials) time.Duration {
	d := time.Duration(h.Expires)
	if c.Token != "" && h.SignatureVersion == osssign.V4 && d > osssign.MaxSTSURLLifetime {
		return osssign.MaxSTSURLLifetime
	}
	return d
}
