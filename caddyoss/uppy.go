package caddyoss

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The Uppy routes answer Uppy Companion's S3 protocol (the one
// @uppy/aws-s3 speaks when its endpoint is a Companion URL) below
// uppy_path:
//
//	GET    <uppy_path>/s3/params?filename=&type=            PostObject fields
//	POST   <uppy_path>/s3/multipart                         InitiateMultipartUpload
//	GET    <uppy_path>/s3/multipart/:uploadId?key=          ListParts
//	GET    <uppy_path>/s3/multipart/:uploadId/batch?key=&partNumbers=
//	GET    <uppy_path>/s3/multipart/:uploadId/:partNumber?key=  UploadPart URL
//	POST   <uppy_path>/s3/multipart/:uploadId/complete?key= CompleteMultipartUpload
//	DELETE <uppy_path>/s3/multipart/:uploadId?key=          AbortMultipartUpload
//
// Errors are Companion's {"error": "..."}.

// OSS's multipart limits.
const (
	maxPartNumber = 10000 // part numbers are 1..10000
	maxPartsPage  = 1000  // ListParts returns at most this many per page
	// maxUppyBody caps the JSON bodies of create and complete, as
	// Companion does.
	maxUppyBody = 1 << 20
)

// Timeouts of the Uppy routes' OSS client, in seconds. Completing a large
// upload with a callback takes OSS longer than the 3s HeadObject allows:
// OSS waits up to 5s for the callback alone.
const (
	uppyConnectTimeoutSec = 5
	uppyReadTimeoutSec    = 60
)

// uppyRoutes answers the Uppy routes of one handler, whose configuration
// it reads; it owns the OSS client for multipart calls and the seal of
// upload ids.
type uppyRoutes struct {
	*Handler
	prefix string       // UppyPath + "/s3/"
	bucket *oss.Bucket  // the multipart calls' client
	seal   uploadIDSeal // the callback binding key, so every instance of a cluster agrees
}

// provisionUppy builds the Uppy routes, unless uppy_path is off.
func (h *Handler) provisionUppy() error {
	if h.UppyPath == routeOff {
		return nil
	}
	b, err := h.newServerBucket(uppyConnectTimeoutSec, uppyReadTimeoutSec)
	if err != nil {
		return err
	}
	u := &uppyRoutes{Handler: h, prefix: strings.TrimSuffix(h.UppyPath, "/") + "/s3/", bucket: b}
	u.seal.keys = h.bindingKeys
	if u.seal.keys == nil {
		u.seal.keys = h.newKeySource()
	}
	h.uppy = u
	return nil
}

// checkUppyPath refuses another route below the Uppy routes, which would
// never be reached.
func checkUppyPath(p string, others []route) error {
	if p == "" || p == routeOff {
		return nil
	}
	if err := checkRoutePath("uppy_path", p); err != nil {
		return err
	}
	prefix := strings.TrimSuffix(p, "/") + "/s3/"
	for _, o := range others {
		if o.path != routeOff && strings.HasPrefix(o.path, prefix) {
			return fmt.Errorf("%s: %q is below uppy_path's routes (%s*)", o.name, o.path, prefix)
		}
	}
	return nil
}

// serve dispatches one request below <uppy_path>/s3/; rest is the path
// after that prefix.
func (u *uppyRoutes) serve(w http.ResponseWriter, r *http.Request, rest string) error {
	if rest == "params" {
		if err := allowMethods(w, r, http.MethodGet); err != nil {
			return err
		}
		return u.serveUppyParams(w, r)
	}
	if rest == "multipart" {
		if err := allowMethods(w, r, http.MethodPost); err != nil {
			return err
		}
		return u.serveUppyCreate(w, r)
	}
	id, sub, ok := strings.Cut(strings.TrimPrefix(rest, "multipart/"), "/")
	if !strings.HasPrefix(rest, "multipart/") || id == "" || strings.Contains(sub, "/") || (ok && sub == "") {
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no Uppy route %s%s", u.prefix, rest))
	}
	switch {
	case !ok:
		if err := allowMethods(w, r, http.MethodGet, http.MethodDelete); err != nil {
			return err
		}
		if r.Method == http.MethodDelete {
			return u.serveUppyAbort(w, r, id)
		}
		return u.serveUppyList(w, r, id)
	case sub == "complete":
		if err := allowMethods(w, r, http.MethodPost); err != nil {
			return err
		}
		return u.serveUppyComplete(w, r, id)
	case sub == "batch":
		if err := allowMethods(w, r, http.MethodGet); err != nil {
			return err
		}
		return u.serveUppyBatch(w, r, id)
	default:
		if err := allowMethods(w, r, http.MethodGet); err != nil {
			return err
		}
		return u.serveUppySignPart(w, r, id, sub)
	}
}

// allowMethods answers 405 unless r's method is one of methods (GET
// implies HEAD).
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) error {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return nil
		}
	}
	allow := strings.Join(methods, ", ")
	if methods[0] == http.MethodGet {
		allow = strings.Replace(allow, "GET", "GET, HEAD", 1)
	}
	w.Header().Set("Allow", allow)
	return caddyhttp.Error(http.StatusMethodNotAllowed,
		fmt.Errorf("method %s is not allowed here; use %s", r.Method, strings.Join(methods, " or ")))
}

// serveUppyParams answers GET <uppy_path>/s3/params?filename=&type= with
// the PostObject form Uppy sends for a single upload: the same policy as
// the post-policy route (exact key, limits, type, callback).
func (u *uppyRoutes) serveUppyParams(w http.ResponseWriter, r *http.Request) error {
	up := upload{route: signRouteUppy}
	if err := u.prepareUpload(w, r, &up); err != nil {
		return err
	}
	_, pp, token, err := u.signPostObject(w, r, up, "201")
	if err != nil {
		return err
	}
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	b := append((*bp)[:0], `{"method":"POST","url":"`...)
	// With the trailing '/', as Companion answers it: Uppy reports the
	// object's location as url + key.
	b = jsonw.AppendStringContent(b, u.uploadURL)
	b = append(b, `/",`...)
	b = appendFieldsObject(b, up.key, pp.Fields)
	b = append(b, `,"expires":`...)
	b = strconv.AppendInt(b, int64(time.Duration(u.Expires)/time.Second), 10)
	b = u.appendConfirmMember(b, token)
	b = append(b, '}')
	*bp = b
	return writeJSON(w, http.StatusOK, b)
}

// ossErrorCode is the OSS error code of err, or "".
func ossErrorCode(err error) (string, int) {
	var se oss.ServiceError
	if errors.As(err, &se) {
		return se.Code, se.StatusCode
	}
	return "", 0
}
