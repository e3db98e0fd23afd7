package ossemu

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
)

func (e *Emulator) exists(bucketName, key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buckets[bucketName].objects[key] != nil
}

func (e *Emulator) store(bucketName, key string, data []byte, attrs objectAttrs) *Object {
	obj := newObject(bucketName, key, data, attrs, e.now())
	e.mu.Lock()
	e.buckets[bucketName].objects[key] = obj
	e.mu.Unlock()
	return obj
}

// setWriteHeaders adds what OSS answers to a write.
func setWriteHeaders(w http.ResponseWriter, obj *Object) {
	h := w.Header()
	h.Set("ETag", obj.ETag)
	h.Set("x-oss-hash-crc64ecma", strconv.FormatUint(obj.CRC64, 10))
	if obj.Type == "Normal" {
		sum := md5.Sum(obj.Data)
		h.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	}
}

func factsFor(obj *Object, r *http.Request, requestID, operation string) uploadFacts {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	f := uploadFacts{
		bucket: obj.Bucket, key: obj.Key, etag: obj.ETag, mimeType: obj.ContentType,
		clientIP: ip, requestID: requestID, operation: operation,
		size: int64(len(obj.Data)), crc64: obj.CRC64,
	}
	if obj.Type == "Normal" {
		sum := md5.Sum(obj.Data)
		f.contentMD5 = base64.StdEncoding.EncodeToString(sum[:])
	}
	return f
}

// callbackParams reads callback and callback-var from headers or the
// query; using both is an error.
func callbackParams(r *http.Request, c *reqCtx) (*callbackSpec, map[string]string, *ossError) {
	hcb, hvar := r.Header.Get("x-oss-callback"), r.Header.Get("x-oss-callback-var")
	qcb, _ := firstParam(c.query, "callback")
	qvar, _ := firstParam(c.query, "callback-var")
	if (hcb != "" || hvar != "") && (qcb != "" || qvar != "") {
		return nil, nil, errInvalidArgument("The callback must be given either in headers or in the query, not both.", "callback", "")
	}
	cb, cv := hcb, hvar
	if cb == "" && cv == "" {
		cb, cv = qcb, qvar
	}
	spec, oe := parseCallback(cb)
	if oe != nil {
		return nil, nil, oe
	}
	vars, oe := parseCallbackVar(cv)
	if oe != nil {
		return nil, nil, oe
	}
	return spec, vars, nil
}

func (e *Emulator) putObject(w http.ResponseWriter, r *http.Request, c *reqCtx) *ossError {
	if r.Header.Get("x-oss-copy-source") != "" {
		return newErr(http.StatusNotImplemented, "NotImplemented", "ossemu does not emulate CopyObject.")
	}
	if _, oe := e.signedFor(r, c, "PutObject"); oe != nil {
		return oe
	}
	spec, vars, oe := callbackParams(r, c)
	if oe != nil {
		return oe
	}
	attrs, oe := headerAttrs(r.Header)
	if oe != nil {
		return oe
	}
	data, oe := readObjectBody(r)
	if oe != nil {
		return oe
	}
	if forbidOverwrite(r.Header) && e.exists(c.bucket.name, c.key) {
		return errFileAlreadyExists()
	}
	obj := e.store(c.bucket.name, c.key, data, attrs)
	setWriteHeaders(w, obj)
	if spec != nil {
		facts := factsFor(obj, r, c.requestID, "PutObject")
		facts.data = data
		e.finishWithCallback(w, r, c.requestID, c.hostID, spec, renderBody(spec, facts, vars), c.bucket.name)
		return nil
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// forbidOverwrite reports whether a request asks, with
// x-oss-forbid-overwrite: true, not to replace an existing object.
func forbidOverwrite(h http.Header) bool {
	return strings.EqualFold(h.Get("x-oss-forbid-overwrite"), "true")
}

func errFileAlreadyExists() *ossError {
	return newErr(http.StatusConflict, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")
}

// readObjectBody reads an object's (or a part's) bytes and checks them
// against Content-MD5 when it is sent.
func readObjectBody(r *http.Request) ([]byte, *ossError) {
	data, oe := readLimitedBody(r, maxObjectSize)
	if oe != nil {
		return nil, oe
	}
	if oe := checkContentMD5(r, data); oe != nil {
		return nil, oe
	}
	return data, nil
}

func checkContentMD5(r *http.Request, data []byte) *ossError {
	md := r.Header.Get("Content-MD5")
	if md == "" {
		return nil
	}
	sum := md5.Sum(data)
	if md != base64.StdEncoding.EncodeToString(sum[:]) {
		return newErr(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
	}
	return nil
}

func (e *Emulator) getObject(w http.ResponseWriter, r *http.Request, c *reqCtx) *ossError {
	op := "GetObject"
	if r.Method == http.MethodHead {
		op = "HeadObject"
	}
	anonymous := unsigned(r, c.query)
	overrides := responseOverrides(c.query)
	if anonymous && len(overrides) > 0 {
		return newErr(http.StatusBadRequest, "InvalidRequest",
			"Request specific response headers cannot be used for anonymous GET requests.")
	}
	if !anonymous {
		if _, oe := e.signedFor(r, c, op); oe != nil {
			return oe
		}
	}
	obj, ok := e.Object(c.bucket.name, c.key)
	if anonymous && !(ok && publicRead(obj.ACL)) {
		// Buckets are private, so without a signature only an object whose
		// own ACL is public may be read; a missing key is denied the same
		// way rather than revealed as missing.
		if ok && obj.ACL == aclPrivate {
			return errAccessDenied("You have no right to access this object because of object acl.")
		}
		return errAccessDenied("You have no right to access this object because of bucket acl.")
	}
	if !ok {
		return errNoSuchKey().with("Key", c.key)
	}
	h := w.Header()
	for k, v := range obj.Meta {
		h[k] = v
	}
	h.Set("Content-Type", obj.ContentType)
	h.Set("ETag", obj.ETag)
	h.Set("x-oss-hash-crc64ecma", strconv.FormatUint(obj.CRC64, 10))
	h.Set("x-oss-object-type", obj.Type)
	h.Set("x-oss-storage-class", obj.StorageClass)
	h.Set("Accept-Ranges", "bytes")
	if obj.Type == "Normal" {
		sum := md5.Sum(obj.Data)
		h.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	for _, o := range overrides {
		h.Set(o[0], o[1])
	}
	http.ServeContent(w, r, "", obj.LastModified, bytes.NewReader(obj.Data))
	return nil
}

// responseParams are the query parameters by which a signed GET (or HEAD)
// sets headers of its answer, and the header each sets.
var responseParams = [][2]string{
	{"response-content-type", "Content-Type"},
	{"response-content-language", "Content-Language"},
	{"response-expires", "Expires"},
	{"response-cache-control", "Cache-Control"},
	{"response-content-disposition", "Content-Disposition"},
	{"response-content-encoding", "Content-Encoding"},
}

// responseOverrides lists the headers the request's response-* parameters
// set, as (header, value).
func responseOverrides(query []queryParam) [][2]string {
	var out [][2]string
	for _, p := range responseParams {
		if v, ok := firstParam(query, p[0]); ok {
			out = append(out, [2]string{p[1], v})
		}
	}
	return out
}

func (e *Emulator) deleteObject(w http.ResponseWriter, r *http.Request, c *reqCtx) *ossError {
	if _, oe := e.signedFor(r, c, "DeleteObject"); oe != nil {
		return oe
	}
	e.mu.Lock()
	delete(c.bucket.objects, c.key)
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
