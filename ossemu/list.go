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

// ownerID is the account the emulator's buckets belong to.
const ownerID = "1234567890123456"

// listObjects is ListObjects (V1): prefix, marker and max-keys; no
// delimiter grouping.
func (e *Emulator) listObjects(w http.ResponseWriter, r *http.Request, c *reqCtx) *ossError {
	p, oe := e.authenticate(r, c.bucket.name, "", c.query)
	if oe != nil {
		return oe
	}
	prefix, _ := firstParam(c.query, "prefix")
	marker, _ := firstParam(c.query, "marker")
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
	var all []listedObject
	for k, o := range c.bucket.objects {
		if strings.HasPrefix(k, prefix) && k > marker {
			all = append(all, listedObject{k, o.LastModified.UTC().Format("2006-01-02T15:04:05.000Z"), o.ETag, o.Type, len(o.Data), o.StorageClass, listOwner{ownerID, ownerID}})
		}
	}
	e.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Key < all[j].Key })
	truncated := len(all) > maxKeys
	next := ""
	if truncated {
		all = all[:maxKeys]
		next = all[len(all)-1].Key
	}
	writeXML(w, http.StatusOK, struct {
		XMLName     xml.Name `xml:"ListBucketResult"`
		Name        string
		Prefix      string
		Marker      string
		MaxKeys     int
		Delimiter   string
		IsTruncated bool
		NextMarker  string `xml:",omitempty"`
		Contents    []listedObject
	}{Name: c.bucket.name, Prefix: prefix, Marker: marker, MaxKeys: maxKeys, IsTruncated: truncated, NextMarker: next, Contents: all})
	return nil
}
