package ossemu

import (
	"crypto/md5"
	"encoding/hex"
	"hash/crc64"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

type bucket struct {
	name    string
	objects map[string]*Object
	uploads map[string]*multipartUpload
}

func newBucket(name string) *bucket {
	return &bucket{name: name, objects: map[string]*Object{}, uploads: map[string]*multipartUpload{}}
}

// Object is a stored object as the emulator holds it.
type Object struct {
	Bucket       string
	Key          string
	Data         []byte
	ContentType  string
	ETag         string // quoted, as OSS sends it: "5EB63BBBE01EEED093CB22BB8F5ACDC3"
	CRC64        uint64
	LastModified time.Time
	// Type is Normal for PutObject/PostObject and Multipart for
	// CompleteMultipartUpload.
	Type string
	// Meta holds x-oss-meta-* and the standard headers stored with the
	// object (Cache-Control, Content-Disposition, Content-Encoding, Expires),
	// by canonical header name.
	Meta http.Header
	// ACL is the object ACL set by the upload: default (when it set none;
	// the object follows the bucket, which is private in the emulator),
	// private, public-read or public-read-write.
	ACL string
	// StorageClass is Standard (when the upload set none), IA, Archive,
	// ColdArchive or DeepColdArchive, spelt as OSS spells it whatever the
	// case the request used.
	StorageClass string
}

// objectAttrs is what an upload sets on an object besides its bytes.
type objectAttrs struct {
	contentType  string
	meta         http.Header
	acl          string
	storageClass string
}

type multipartUpload struct {
	id    string
	key   string
	attrs objectAttrs // from InitiateMultipartUpload, applied at completion
	parts map[int]*part
}

type part struct {
	number   int
	data     []byte
	etag     string
	crc      uint64
	modified time.Time
}

func quotedMD5(data []byte) (etag string, sum [16]byte) {
	sum = md5.Sum(data)
	return `"` + strings.ToUpper(hex.EncodeToString(sum[:])) + `"`, sum
}

func newObject(bucketName, key string, data []byte, a objectAttrs, now time.Time) *Object {
	etag, _ := quotedMD5(data)
	if a.contentType == "" {
		a.contentType = "application/octet-stream"
	}
	if a.meta == nil {
		a.meta = http.Header{}
	}
	if a.acl == "" {
		a.acl = aclDefault
	}
	if a.storageClass == "" {
		a.storageClass = classStandard
	}
	return &Object{
		Bucket: bucketName, Key: key, Data: data, ContentType: a.contentType, ETag: etag,
		CRC64: crc64.Checksum(data, crcTable), LastModified: now.UTC().Truncate(time.Second),
		Type: "Normal", Meta: a.meta, ACL: a.acl, StorageClass: a.storageClass,
	}
}

// Object returns a copy of a stored object.
func (e *Emulator) Object(bucketName, key string) (Object, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.buckets[bucketName]
	if b == nil || b.objects[key] == nil {
		return Object{}, false
	}
	o := *b.objects[key]
	o.Data = append([]byte(nil), o.Data...)
	o.Meta = o.Meta.Clone()
	return o, true
}

// Keys lists the object keys of a bucket, sorted.
func (e *Emulator) Keys(bucketName string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.buckets[bucketName]
	if b == nil {
		return nil
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PutObject stores an object directly, without a request: a seed for tests.
// Its ACL is default and its storage class Standard.
func (e *Emulator) PutObject(bucketName, key string, data []byte, contentType string) error {
	if err := e.AddBucket(bucketName); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buckets[bucketName].objects[key] = newObject(bucketName, key, append([]byte(nil), data...), objectAttrs{contentType: contentType}, e.now())
	return nil
}

// metaHeaders picks what OSS stores with an object from request headers
// (or PostObject form fields, given as a header).
func metaHeaders(h http.Header) http.Header {
	m := http.Header{}
	for name, vs := range h {
		ln := strings.ToLower(name)
		switch {
		case strings.HasPrefix(ln, "x-oss-meta-"),
			ln == "cache-control", ln == "content-disposition", ln == "content-encoding", ln == "expires":
			m[http.CanonicalHeaderKey(name)] = append([]string(nil), vs...)
		}
	}
	return m
}

const (
	aclDefault    = "default"
	aclPrivate    = "private"
	classStandard = "Standard"
)

// objectACL checks an x-oss-object-acl header or form field; given is
// whether the request carried it at all, since an empty value is refused
// like any other unknown ACL.
func objectACL(v string, given bool) (string, *ossError) {
	if !given {
		return aclDefault, nil
	}
	switch v {
	case aclDefault, aclPrivate, "public-read", "public-read-write":
		return v, nil
	}
	return "", errInvalidArgument("no such object access control exists", "x-oss-object-acl", v)
}

// publicRead reports whether an object ACL lets anyone read the object.
func publicRead(acl string) bool { return acl == "public-read" || acl == "public-read-write" }

var storageClasses = []string{classStandard, "IA", "Archive", "ColdArchive", "DeepColdArchive"}

// storageClass checks an x-oss-storage-class header or form field and
// returns OSS's spelling of it.
func storageClass(v string, given bool) (string, *ossError) {
	if !given {
		return classStandard, nil
	}
	if v == "" {
		return "", errInvalidArgument("x-oss-storage-class cannot be empty.", "x-oss-storage-class", v).ec("0017-00000131")
	}
	for _, c := range storageClasses {
		if strings.EqualFold(v, c) {
			return c, nil
		}
	}
	return "", errInvalidArgument("Invalid storage class: "+v, "x-oss-storage-class", v).ec("0017-00000132")
}

// headerAttrs reads what a PutObject or InitiateMultipartUpload request
// sets on its object from its headers.
func headerAttrs(h http.Header) (objectAttrs, *ossError) {
	acl, oe := objectACL(headerPresent(h, "x-oss-object-acl"))
	if oe != nil {
		return objectAttrs{}, oe
	}
	class, oe := storageClass(headerPresent(h, "x-oss-storage-class"))
	if oe != nil {
		return objectAttrs{}, oe
	}
	return objectAttrs{contentType: h.Get("Content-Type"), meta: metaHeaders(h), acl: acl, storageClass: class}, nil
}

// maxObjectName is the longest object name OSS takes, in bytes.
const maxObjectName = 1023

// checkObjectName applies OSS's object naming rules: 1 to 1023 bytes of
// UTF-8, not starting with / or \.
func checkObjectName(key string) *ossError {
	switch {
	case key == "":
		return newErr(http.StatusBadRequest, "InvalidObjectName", "The Object name can not be empty").ec("0016-00000001")
	case len(key) > maxObjectName:
		return newErr(http.StatusBadRequest, "InvalidObjectName", "The Length of Object name must be less than 1024").ec("0016-00000002")
	case !utf8.ValidString(key):
		return newErr(http.StatusBadRequest, "InvalidObjectName", "The specified object is not valid.").ec("0016-00000002")
	case key[0] == '/' || key[0] == '\\':
		return newErr(http.StatusBadRequest, "InvalidObjectName", "The specified object is not valid.").ec("0016-00000005")
	}
	return nil
}
