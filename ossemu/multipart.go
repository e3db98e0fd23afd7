package ossemu

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"hash/crc64"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

const minPartSize = 100 << 10 // every part but the last, as on OSS

func writeXML(w http.ResponseWriter, status int, v any) {
	out, _ := xml.Marshal(v)
	body := append([]byte(xml.Header), out...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (e *Emulator) initiateMultipart(w http.ResponseWriter, r *http.Request, c *reqCtx) *ossError {
	if _, oe := e.signedFor(r, c, "InitiateMultipartUpload"); oe != nil {
		return oe
	}
	attrs, oe := headerAttrs(r.Header)
	if oe != nil {
		return oe
	}
	if forbidOverwrite(r.Header) && e.exists(c.bucket.name, c.key) {
		return errFileAlreadyExists()
	}
	u := &multipartUpload{
		id: strings.ToUpper(randomString(32, "0123456789abcdef")), key: c.key,
		attrs: attrs, parts: map[int]*part{},
	}
	e.mu.Lock()
	c.bucket.uploads[u.id] = u
	e.mu.Unlock()
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Bucket   string
		Key      string
		UploadId string
	}{Bucket: c.bucket.name, Key: c.key, UploadId: u.id})
	return nil
}

// upload finds a multipart upload of the request's key.
func (e *Emulator) upload(c *reqCtx, id string) (*multipartUpload, *ossError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u := c.bucket.uploads[id]
	if u == nil || u.key != c.key {
		return nil, errNoSuchUpload().with("UploadId", id)
	}
	return u, nil
}

func (e *Emulator) uploadPart(w http.ResponseWriter, r *http.Request, c *reqCtx, id string) *ossError {
	if r.Header.Get("x-oss-copy-source") != "" {
		return newErr(http.StatusNotImplemented, "NotImplemented", "ossemu does not emulate UploadPartCopy.")
	}
	if _, oe := e.signedFor(r, c, "UploadPart"); oe != nil {
		return oe
	}
	numStr, _ := firstParam(c.query, "partNumber")
	n, err := strconv.Atoi(numStr)
	if err != nil || n < 1 || n > 10000 {
		return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive.", "partNumber", numStr)
	}
	u, oe := e.upload(c, id)
	if oe != nil {
		return oe
	}
	data, oe := readObjectBody(r)
	if oe != nil {
		return oe
	}
	etag, _ := quotedMD5(data)
	p := &part{number: n, data: data, etag: etag, crc: crc64.Checksum(data, crcTable), modified: e.now()}
	e.mu.Lock()
	u.parts[n] = p
	e.mu.Unlock()
	w.Header().Set("ETag", etag)
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(p.crc, 10))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

type listedPart struct {
	PartNumber    int
	LastModified  string
	ETag          string
	HashCrc64ecma uint64
	Size          int
}

func (e *Emulator) listParts(w http.ResponseWriter, r *http.Request, c *reqCtx, id string) *ossError {
	if _, oe := e.signedFor(r, c, "ListParts"); oe != nil {
		return oe
	}
	u, oe := e.upload(c, id)
	if oe != nil {
		return oe
	}
	page, oe := partsPage(c.query)
	if oe != nil {
		return oe
	}
	encode, oe := encodingType(c.query)
	if oe != nil {
		return oe
	}
	e.mu.Lock()
	parts := make([]listedPart, 0, len(u.parts))
	for _, p := range u.parts {
		if p.number > page.marker {
			parts = append(parts, listedPart{p.number, p.modified.UTC().Format("2006-01-02T15:04:05.000Z"), p.etag, p.crc, len(p.data)})
		}
	}
	e.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	truncated := len(parts) > page.max
	if truncated {
		parts = parts[:page.max]
	}
	next := 0
	if len(parts) > 0 {
		next = parts[len(parts)-1].PartNumber
	}
	out := struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		Bucket               string
		EncodingType         string `xml:",omitempty"`
		Key                  string
		UploadId             string
		PartNumberMarker     int
		NextPartNumberMarker int
		MaxParts             int
		IsTruncated          bool
		Part                 []listedPart
	}{Bucket: c.bucket.name, Key: c.key, UploadId: id, PartNumberMarker: page.marker, NextPartNumberMarker: next,
		MaxParts: page.max, IsTruncated: truncated, Part: parts}
	if encode {
		out.EncodingType, out.Key = "url", urlEncode(c.key)
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (e *Emulator) completeMultipart(w http.ResponseWriter, r *http.Request, c *reqCtx, id string) *ossError {
	if _, oe := e.signedFor(r, c, "CompleteMultipartUpload"); oe != nil {
		return oe
	}
	spec, vars, oe := callbackParams(r, c)
	if oe != nil {
		return oe
	}
	u, oe := e.upload(c, id)
	if oe != nil {
		return oe
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return errMalformedXML()
	}
	if oe := checkContentMD5(r, body); oe != nil {
		return oe
	}
	var req struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Parts) == 0 {
		return errMalformedXML()
	}
	if forbidOverwrite(r.Header) && e.exists(c.bucket.name, c.key) {
		return errFileAlreadyExists().ec("0042-00000214")
	}

	e.mu.Lock()
	var data bytes.Buffer
	digests := make([]byte, 0, 16*len(req.Parts))
	prev := 0
	for i, rp := range req.Parts {
		if rp.PartNumber <= prev {
			e.mu.Unlock()
			return newErr(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.")
		}
		prev = rp.PartNumber
		stored := u.parts[rp.PartNumber]
		if stored == nil || !strings.EqualFold(strings.Trim(rp.ETag, `" `), strings.Trim(stored.etag, `"`)) {
			e.mu.Unlock()
			return newErr(http.StatusBadRequest, "InvalidPart",
				"One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.").
				with("PartNumber", strconv.Itoa(rp.PartNumber)).with("ETag", rp.ETag)
		}
		if i < len(req.Parts)-1 && len(stored.data) < minPartSize {
			e.mu.Unlock()
			return newErr(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload smaller than the minimum allowed size.").
				with("PartNumber", strconv.Itoa(rp.PartNumber)).with("MinSizeAllowed", strconv.Itoa(minPartSize))
		}
		data.Write(stored.data)
		sum, _ := hex.DecodeString(strings.Trim(stored.etag, `"`))
		digests = append(digests, sum...)
	}
	delete(c.bucket.uploads, id)
	e.mu.Unlock()

	obj := newObject(c.bucket.name, c.key, data.Bytes(), u.attrs, e.now())
	all := md5.Sum(digests)
	obj.ETag = `"` + strings.ToUpper(hex.EncodeToString(all[:])) + "-" + strconv.Itoa(len(req.Parts)) + `"`
	obj.Type = "Multipart"
	e.mu.Lock()
	c.bucket.objects[c.key] = obj
	e.mu.Unlock()

	setWriteHeaders(w, obj)
	if spec != nil {
		facts := factsFor(obj, r, c.requestID, "CompleteMultipartUpload")
		e.finishWithCallback(w, r, c.requestID, c.hostID, spec, renderBody(spec, facts, vars), c.bucket.name)
		return nil
	}
	loc := c.location(r, c.key)
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Location: loc, Bucket: c.bucket.name, Key: c.key, ETag: obj.ETag})
	return nil
}

func errMalformedXML() *ossError {
	return newErr(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
}

func (e *Emulator) abortMultipart(w http.ResponseWriter, r *http.Request, c *reqCtx, id string) *ossError {
	if _, oe := e.signedFor(r, c, "AbortMultipartUpload"); oe != nil {
		return oe
	}
	if _, oe := e.upload(c, id); oe != nil {
		return oe
	}
	e.mu.Lock()
	delete(c.bucket.uploads, id)
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
