package caddyoss

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"go.uber.org/zap/zapcore"
)

// defaultPresignType is signed when the client names no type: the response's
// headers tell it to send exactly this.
const defaultPresignType = "application/octet-stream"

// newPresignBucket builds the one OSS client the presign route uses. It
// points at the upload URL in CNAME mode, so URLs are <upload_url>/<key>
// while the signature covers /<bucket>/<key> as OSS requires.
func (h *Handler) newPresignBucket() (*oss.Bucket, error) {
	opts := []oss.ClientOption{
		oss.UseCname(true),
		oss.SetCredentialsProvider(presignCredentials{h.creds}),
		oss.Region(h.Region),
	}
	if h.SignatureVersion == sigV4 {
		opts = append(opts, oss.AuthVersion(oss.AuthV4))
	} else {
		opts = append(opts, oss.AuthVersion(oss.AuthV1))
	}
	client, err := oss.New(h.uploadURL, "", "", opts...)
	if err != nil {
		return nil, fmt.Errorf("presign client: %w", err)
	}
	return client.Bucket(h.Bucket)
}

// presignCredentials hands the server's current credentials to the SDK on
// every signature, so rotated credentials take effect without a new client.
type presignCredentials struct{ src *credentialSource }

func (p presignCredentials) GetCredentials() oss.Credentials {
	c, _ := p.src.get()
	return ossCreds(c)
}

func (p presignCredentials) GetCredentialsE() (oss.Credentials, error) {
	c, err := p.src.get()
	return ossCreds(c), err
}

// servePresign answers GET <presign_path>?filename=&type= with a presigned
// PUT URL, or just the URL for clients that accept only text/plain.
func (h *Handler) servePresign(w http.ResponseWriter, r *http.Request) error {
	up, err := h.prepareUpload(w, r)
	if err != nil {
		return err
	}
	contentType := up.hints.contentType
	if contentType == "" {
		contentType = defaultPresignType
	}
	expires := time.Duration(h.Expires)
	var params [][2]string // signed query parameters besides the signature's own
	if h.callbackB64 != "" {
		params = append(params, [2]string{"callback", h.callbackB64})
		vars, err := h.issueVars(r.Context(), up.custom, bindingExactKey, up.key, h.now().Add(expires))
		if err != nil {
			return h.unavailable(r, "signing the callback binding", err)
		}
		if v, err := callbackVarParam(vars); err != nil {
			return h.internalError(r, "encoding callback variables", err)
		} else if v != "" {
			params = append(params, [2]string{"callback-var", v})
		}
	}
	var signed string
	if h.SignatureVersion == sigV4 {
		signed = presignV4(presignV4Input{
			baseURL: h.uploadURL, bucket: h.Bucket, region: h.Region, key: up.key,
			contentType: contentType, expires: expires, now: h.now(), params: params,
		}, up.creds, h.v4Keys)
	} else {
		opts := []oss.Option{oss.ContentType(contentType)}
		for _, p := range params {
			opts = append(opts, oss.AddParam(p[0], p[1]))
		}
		if signed, err = h.presignBucket.SignURL(up.key, oss.HTTPPut, int64(expires/time.Second), opts...); err != nil {
			return h.internalError(r, "signing the URL", err)
		}
	}
	expiration := h.now().Add(expires)
	if ce := h.logger.Check(zapcore.DebugLevel, "presigned URL signed"); ce != nil { // the fields are built only when debug is on
		ce.Write(zapKey(up.key), zapVersion(h.SignatureVersion), zapExpires(expiration), zapRemote(r))
	}

	if wantsPlainText(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, err := w.Write([]byte(signed))
		return err
	}
	bp := getJSONBuf()
	defer putJSONBuf(bp)
	o := jsonObject{b: *bp}
	o.open()
	o.str("url", signed)
	o.str("method", "PUT")
	o.object("headers", func(hd *jsonObject) { hd.str("Content-Type", contentType) })
	o.str("key", up.key)
	o.str("expires", expiration.UTC().Format(time.RFC3339))
	o.close()
	*bp = o.b
	return writeJSONBytes(w, http.StatusOK, o.b)
}

// wantsPlainText reports whether the client accepts text/plain but not JSON,
// as Alibaba's sample client (which reads response.text()) does.
func wantsPlainText(r *http.Request) bool {
	accept := strings.ToLower(r.Header.Get("Accept"))
	return strings.Contains(accept, "text/plain") && !strings.Contains(accept, "application/json")
}
