package ossemu

import (
	"crypto/md5"
	"encoding/hex"
	"hash/crc64"
	"net/http"
	"sort"
	"strings"
	"time"
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
}

type multipartUpload struct {
	id          string
	key         string
	contentType string
	meta        http.Header
	parts       map[int]*part
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

func newObject(bucketName, key string, data []byte, contentType string, meta http.Header, now time.Time) *Object {
	etag, _ := quotedMD5(data)
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if meta == nil {
		meta = http.Header{}
	}
	return &Object{
		Bucket: bucketName, Key: key, Data: data, ContentType: contentType, ETag: etag,
		CRC64: crc64.Checksum(data, crcTable), LastModified: now.UTC().Truncate(time.Second),
		Type: "Normal", Meta: meta,
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
func (e *Emulator) PutObject(bucketName, key string, data []byte, contentType string) error {
	if err := e.AddBucket(bucketName); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buckets[bucketName].objects[key] = newObject(bucketName, key, append([]byte(nil), data...), contentType, nil, e.now())
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
