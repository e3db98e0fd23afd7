package ossemu

import (
	"encoding/xml"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

type listedObject struct {
	Key          string
	LastModified string
	ETag         string
	Type         string
	Size         int
	StorageClass string
	Owner        listOwner
}

type listOwner struct {
	ID          string
	DisplayName string
}

type commonPrefix struct {
	Prefix string
}

// ownerID is the account the emulator's buckets belong to.
const ownerID = "1234567890123456"

// encodingType reads the encoding-type parameter: "" or "url".
func encodingType(query []queryParam) (bool, *ossError) {
	v, ok := firstParam(query, "encoding-type")
	if !ok || v == "" {
		return false, nil
	}
	if v != "url" {
		return false, errInvalidArgument("The encoding-type must be url.", "encoding-type", v)
	}
	return true, nil
}

// urlEncode is how OSS writes names in an answer to encoding-type=url:
// every byte but A-Z a-z 0-9 - _ . ~ and / as %XX, a space as %20 and a
// plus as %2B, so that both url.QueryUnescape and decodeURIComponent give
// the name back.
func urlEncode(s string) string { return percentEncode(s, true) }

// listObjects is ListObjects (V1): prefix, marker, max-keys, delimiter
// (keys sharing what comes before the delimiter are rolled up into one
// CommonPrefixes entry) and encoding-type=url.
func (e *Emulator) listObjects(w http.ResponseWriter, r *http.Request, c *reqCtx) *ossError {
	p, oe := e.authenticate(r, c.bucket.name, "", c.query)
	if oe != nil {
		return oe
	}
	prefix, _ := firstParam(c.query, "prefix")
	marker, _ := firstParam(c.query, "marker")
	delimiter, _ := firstParam(c.query, "delimiter")
	encode, oe := encodingType(c.query)
	if oe != nil {
		return oe
	}
	maxKeys := 100
	if s, ok := firstParam(c.query, "max-keys"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return errInvalidArgument("max-keys must be 1 to 1000.", "max-keys", s)
		}
		maxKeys = n
	}
	if oe := e.authorize(p, "ListObjects", c.bucket.name, prefix); oe != nil {
		return oe
	}
	e.mu.Lock()
	keys := make([]string, 0, len(c.bucket.objects))
	for k := range c.bucket.objects {
		if strings.HasPrefix(k, prefix) && k > marker {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var objects []listedObject
	var prefixes []commonPrefix
	truncated, next := false, ""
	for _, k := range keys {
		entry, rolled := k, false
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				entry, rolled = k[:len(prefix)+i+len(delimiter)], true
			}
		}
		if rolled && len(prefixes) > 0 && prefixes[len(prefixes)-1].Prefix == entry {
			continue // the same common prefix again
		}
		if rolled && entry <= marker {
			continue // a common prefix the marker already passed
		}
		if len(objects)+len(prefixes) == maxKeys {
			truncated = true
			break
		}
		next = entry
		if rolled {
			prefixes = append(prefixes, commonPrefix{entry})
			continue
		}
		o := c.bucket.objects[k]
		objects = append(objects, listedObject{k, o.LastModified.UTC().Format("2006-01-02T15:04:05.000Z"), o.ETag, o.Type, len(o.Data), o.StorageClass, listOwner{ownerID, ownerID}})
	}
	e.mu.Unlock()
	if !truncated {
		next = ""
	}
	out := struct {
		XMLName        xml.Name `xml:"ListBucketResult"`
		Name           string
		Prefix         string
		Marker         string
		MaxKeys        int
		Delimiter      string
		IsTruncated    bool
		NextMarker     string `xml:",omitempty"`
		EncodingType   string `xml:",omitempty"`
		Contents       []listedObject
		CommonPrefixes []commonPrefix
	}{Name: c.bucket.name, Prefix: prefix, Marker: marker, MaxKeys: maxKeys, Delimiter: delimiter,
		IsTruncated: truncated, NextMarker: next, Contents: objects, CommonPrefixes: prefixes}
	if encode {
		out.EncodingType = "url"
		out.Prefix, out.Marker, out.Delimiter, out.NextMarker = urlEncode(prefix), urlEncode(marker), urlEncode(delimiter), urlEncode(next)
		for i := range out.Contents {
			out.Contents[i].Key = urlEncode(out.Contents[i].Key)
		}
		for i := range out.CommonPrefixes {
			out.CommonPrefixes[i].Prefix = urlEncode(out.CommonPrefixes[i].Prefix)
		}
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// partsPaging is the max-parts and part-number-marker of a ListParts.
type partsPaging struct{ max, marker int }

// partsPage reads max-parts (1 to 1000, default 1000) and
// part-number-marker (parts numbered above it are listed; default 0).
func partsPage(query []queryParam) (partsPaging, *ossError) {
	page := partsPaging{max: 1000}
	if s, ok := firstParam(query, "max-parts"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return page, errInvalidArgument("max-parts must be 1 to 1000.", "max-parts", s)
		}
		page.max = n
	}
	if s, ok := firstParam(query, "part-number-marker"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 10000 {
			return page, errInvalidArgument("part-number-marker must be 0 to 10000.", "part-number-marker", s)
		}
		page.marker = n
	}
	return page, nil
}
