package sandbox

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// objectsPath lists the uploaded objects; objectsPath/<key> serves one.
const objectsPath = "/demo/objects"

// maxListedObjects bounds the list; the newest are kept.
const maxListedObjects = 1000

// ossCallbacksPath lists the callbacks the emulator sent or tried to send.
const ossCallbacksPath = "/demo/oss-callbacks"

// maxListedOSSCallbacks bounds that list; the newest are kept.
const maxListedOSSCallbacks = 100

// objectInfo is one stored object as the page lists it.
type objectInfo struct {
	Key          string    `json:"key"`
	Size         int       `json:"size"`
	Type         string    `json:"type"`
	ETag         string    `json:"etag"`
	LastModified time.Time `json:"lastModified"`
	URL          string    `json:"url"` // where the demo app serves the bytes
}

// listObjects answers the objects below the upload prefix of the sandbox
// bucket, newest first, read from the emulator's store.
func (a *demoApp) listObjects(w http.ResponseWriter, r *http.Request) {
	objects := []objectInfo{}
	for _, key := range a.emu.Keys(bucketName) {
		if validKey(key) != nil {
			continue
		}
		o, ok := a.emu.Object(bucketName, key)
		if !ok {
			continue // deleted since Keys
		}
		objects = append(objects, objectInfo{
			Key: o.Key, Size: len(o.Data), Type: o.ContentType, ETag: o.ETag,
			LastModified: o.LastModified, URL: objectURL(o.Key),
		})
	}
	sort.SliceStable(objects, func(i, j int) bool { return objects[i].LastModified.After(objects[j].LastModified) })
	truncated := len(objects) > maxListedObjects
	if truncated {
		objects = objects[:maxListedObjects]
	}
	writeDemoJSON(w, http.StatusOK, map[string]any{
		"bucket": bucketName, "prefix": keyPrefix, "objects": objects, "truncated": truncated,
	})
}

// ossCallback is one callback the emulator made, or refused to make, as
// the page lists it: where to, and how it went. Neither its body nor its
// signature is shown.
type ossCallback struct {
	URL    string `json:"url"`
	Status int    `json:"status"`          // the answer's status; 0 when none came
	Error  string `json:"error,omitempty"` // why it failed (the uploader got 203 CallbackFailed)
}

// listOSSCallbacks answers the callbacks the emulator made or tried to
// make, oldest first: with --no-callbacks, none.
func (a *demoApp) listOSSCallbacks(w http.ResponseWriter, r *http.Request) {
	records := a.emu.Callbacks()
	if len(records) > maxListedOSSCallbacks {
		records = records[len(records)-maxListedOSSCallbacks:]
	}
	out := make([]ossCallback, 0, len(records))
	for _, c := range records {
		out = append(out, ossCallback{URL: c.URL, Status: c.Status, Error: c.Err})
	}
	writeDemoJSON(w, http.StatusOK, out)
}

// object serves one object's bytes with the type it was stored with.
func (a *demoApp) object(w http.ResponseWriter, r *http.Request, key string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeDemoError(w, http.StatusMethodNotAllowed, "GET or HEAD only")
		return
	}
	if err := validKey(key); err != nil {
		writeDemoError(w, http.StatusBadRequest, err.Error())
		return
	}
	o, ok := a.emu.Object(bucketName, key)
	if !ok {
		writeDemoError(w, http.StatusNotFound, "no such object in bucket "+bucketName+": "+key)
		return
	}
	h := w.Header()
	h.Set("Content-Type", o.ContentType)
	h.Set("ETag", o.ETag)
	h.Set("Cache-Control", "no-store")
	// Uploads are untrusted (STS uploads choose any type, text/html
	// included) and served from the page's origin: no sniffing, and a
	// sandboxed document with no scripts and an opaque origin.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	http.ServeContent(w, r, "", o.LastModified, bytes.NewReader(o.Data))
}

// validKey accepts only keys the sandbox's uploads can have: below the
// upload prefix, no empty, "." or ".." segments, no backslashes or control
// characters, valid UTF-8 within OSS's 1023 bytes.
func validKey(key string) error {
	switch {
	case !strings.HasPrefix(key, keyPrefix) || key == keyPrefix:
		return errors.New("the sandbox serves objects below " + keyPrefix + " in bucket " + bucketName + " only")
	case len(key) > 1023 || !utf8.ValidString(key):
		return errors.New("not an OSS object key")
	case strings.ContainsAny(key, `\`) || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("object key with a backslash or a control character")
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errors.New(`object key with an empty, "." or ".." segment`)
		}
	}
	return nil
}

// objectURL is the demo app's path for a key, each segment escaped.
func objectURL(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return objectsPath + "/" + strings.Join(segs, "/")
}
