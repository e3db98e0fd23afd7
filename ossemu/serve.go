package ossemu

import (
	"net"
	"net/http"
	"strings"
)

// reqCtx is what routing learned about a request.
type reqCtx struct {
	requestID string
	hostID    string
	bucket    *bucket
	key       string
	pathStyle bool
	query     []queryParam
}

// ServeHTTP answers OSS and STS requests.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	h := w.Header()
	h.Set("x-oss-request-id", requestID)
	h.Set("Server", "AliyunOSS")
	h.Set("Date", e.now().UTC().Format(http.TimeFormat))
	defer func() {
		e.logf("ossemu: %s %s%s", r.Method, r.Host, r.URL.RequestURI())
	}()

	if r.URL.Path == CallbackPublicKeyPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(e.pubPEM)
		return
	}
	bucketName, key, pathStyle := e.address(r)
	if isSTSRequest(r, bucketName) {
		h.Del("Server")
		e.serveSTS(w, r, requestID)
		return
	}
	c := &reqCtx{requestID: requestID, hostID: r.Host, key: key, pathStyle: pathStyle, query: parseQuery(r.URL.RawQuery)}
	if oe := e.route(w, r, c, bucketName); oe != nil {
		e.logf("ossemu: %s %s: %s %s", r.Method, r.URL.Path, oe.Code, oe.Message)
		oe.write(w, r, requestID, c.hostID)
	}
}

// address finds the bucket and key: virtual-hosted
// (<bucket>.localhost:<port> or any <bucket>.<host> whose first label is a
// bucket) or path-style (/<bucket>/<key>).
func (e *Emulator) address(r *http.Request) (bucketName, key string, pathStyle bool) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if net.ParseIP(host) == nil {
		if label, rest, ok := strings.Cut(host, "."); ok && rest != "" {
			e.mu.Lock()
			known := e.buckets[label] != nil
			e.mu.Unlock()
			if known || rest == "localhost" {
				return label, strings.TrimPrefix(r.URL.Path, "/"), false
			}
		}
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == "" {
		return "", "", true
	}
	bucketName, key, _ = strings.Cut(p, "/")
	return bucketName, key, true
}

func (e *Emulator) route(w http.ResponseWriter, r *http.Request, c *reqCtx, bucketName string) *ossError {
	if bucketName == "" {
		return newErr(http.StatusNotImplemented, "NotImplemented", "ossemu serves object operations on buckets; service-level operations are not emulated.")
	}
	e.mu.Lock()
	c.bucket = e.buckets[bucketName]
	e.mu.Unlock()
	if c.bucket == nil {
		return errNoSuchBucket().with("BucketName", bucketName)
	}
	if r.Method == http.MethodOptions {
		return e.preflight(w, r, c.bucket.name)
	}
	e.corsHeaders(w, r, c.bucket.name)

	if handled, oe := e.serveBucketConfig(w, r, c); handled {
		return oe
	}
	if oe := notEmulated(c); oe != nil {
		return oe
	}
	_, uploads := firstParam(c.query, "uploads")
	uploadID, hasUploadID := firstParam(c.query, "uploadId")
	if c.key == "" {
		switch r.Method {
		case http.MethodPost:
			return e.servePostObject(w, r, c)
		case http.MethodGet:
			return e.listObjects(w, r, c)
		}
		return newErr(http.StatusNotImplemented, "NotImplemented", "ossemu emulates PostObject and ListObjects on buckets, no other bucket operation.")
	}
	if oe := checkObjectName(c.key); oe != nil {
		return oe
	}
	switch {
	case r.Method == http.MethodPost && uploads:
		return e.initiateMultipart(w, r, c)
	case r.Method == http.MethodPut && hasUploadID:
		return e.uploadPart(w, r, c, uploadID)
	case r.Method == http.MethodGet && hasUploadID:
		return e.listParts(w, r, c, uploadID)
	case r.Method == http.MethodPost && hasUploadID:
		return e.completeMultipart(w, r, c, uploadID)
	case r.Method == http.MethodDelete && hasUploadID:
		return e.abortMultipart(w, r, c, uploadID)
	case r.Method == http.MethodPut:
		return e.putObject(w, r, c)
	case r.Method == http.MethodGet, r.Method == http.MethodHead:
		return e.getObject(w, r, c)
	case r.Method == http.MethodDelete:
		return e.deleteObject(w, r, c)
	}
	return newErr(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.").
		with("Method", r.Method).with("ResourceType", "Object")
}

// location is the URL of an object as the request addressed the bucket.
func (c *reqCtx) location(r *http.Request, key string) string {
	if c.pathStyle {
		return "http://" + r.Host + "/" + c.bucket.name + "/" + key
	}
	return "http://" + r.Host + "/" + key
}

// signedFor authenticates a request and checks that its principal may run
// operation on the object.
func (e *Emulator) signedFor(r *http.Request, c *reqCtx, operation string) (*principal, *ossError) {
	p, oe := e.authenticate(r, c.bucket.name, c.key, c.query)
	if oe != nil {
		return nil, oe
	}
	if oe := e.authorize(p, operation, c.bucket.name, c.key); oe != nil {
		return nil, oe
	}
	return p, nil
}

// Sub-resources of operations the emulator does not have. A request naming
// one is answered 501 NotImplemented rather than taken for another
// operation (PUT ?acl for a PutObject that empties the object, GET
// ?uploads for a ListObjects).
var (
	objectSubResources = strings.Fields(`acl tagging append position symlink objectMeta restore
		cleanRestoredObject x-oss-process x-oss-async-process`)
	bucketSubResources = strings.Fields(`acl cors lifecycle location logging website referer policy
		tagging uploads versions versioning encryption stat bucketInfo inventory worm delete
		replication requestPayment list-type continuation-token start-after`)
)

func notEmulated(c *reqCtx) *ossError {
	names := objectSubResources
	if c.key == "" {
		names = bucketSubResources
	}
	for _, n := range names {
		if _, ok := firstParam(c.query, n); ok {
			return newErr(http.StatusNotImplemented, "NotImplemented", "ossemu does not emulate the "+n+" sub-resource.")
		}
	}
	return nil
}
