package caddyoss

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// uploadHints are what a client says about the file it is about to upload.
// They are hints: the signed output is what OSS enforces.
type uploadHints struct {
	filename    string
	contentType string
	size        int64 // -1 when not given
}

// hintNames are the query parameters parseHints reads.
var hintNames = [3]string{"filename", "type", "size"}

// parseHints reads filename, type and size from the query and checks them
// against the configured limits. The error message names the limit. With
// signsDefault (the presign route, whose signature must name a
// Content-Type), a request that names no type gets presignDefaultType's,
// checked against allow_types like a named one. The PostObject route pins
// no type unless one is named, so that forms that send no Content-Type
// field keep working.
func (h *Handler) parseHints(r *http.Request, signsDefault bool) (uploadHints, error) {
	var q [3]string
	queryValuesInto(q[:], r.URL.RawQuery, hintNames[:])
	hints := uploadHints{filename: q[0], contentType: q[1], size: -1}
	if len(hints.filename) > 4096 {
		return hints, fmt.Errorf("filename is longer than 4096 bytes")
	}
	if s := q[2]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return hints, fmt.Errorf("size must be a non-negative integer, got %q", s)
		}
		hints.size = n
		if h.MaxSize > 0 && n > h.MaxSize {
			return hints, fmt.Errorf("size %d exceeds max_size %d", n, h.MaxSize)
		}
		if n < h.MinSize {
			return hints, fmt.Errorf("size %d is below min_size %d", n, h.MinSize)
		}
		if n > osssign.MaxObjectSize {
			return hints, fmt.Errorf("size %d exceeds the OSS limit of %d bytes", n, int64(osssign.MaxObjectSize))
		}
	}
	if hints.contentType != "" {
		mt, err := parseMediaType(hints.contentType)
		if err != nil || !strings.Contains(mt, "/") || len(hints.contentType) > 255 {
			return hints, fmt.Errorf("type %q is not a valid media type", hints.contentType)
		}
	}
	if signsDefault && hints.contentType == "" {
		t, err := h.presignDefaultType(r, hints.filename)
		if err != nil {
			return hints, err
		}
		if len(h.AllowTypes) > 0 && !typeAllowed(h.AllowTypes, t) {
			return hints, fmt.Errorf("type %q (signed because the request names no type) is not in allow_types (%s); name one with type=", t, strings.Join(h.AllowTypes, ", "))
		}
		hints.contentType = t
	}
	if len(h.AllowTypes) > 0 {
		if hints.contentType == "" {
			return hints, fmt.Errorf("type is required: allow_types permits only %s", strings.Join(h.AllowTypes, ", "))
		}
		if !typeAllowed(h.AllowTypes, hints.contentType) {
			return hints, fmt.Errorf("type %q is not in allow_types (%s)", hints.contentType, strings.Join(h.AllowTypes, ", "))
		}
	}
	return hints, nil
}

// typeAllowed reports whether a media type matches one of the patterns:
// "type/subtype", "type/*" or "*/*", compared case-insensitively and
// ignoring parameters.
func typeAllowed(patterns []string, contentType string) bool {
	mt, err := parseMediaType(contentType)
	if err != nil {
		return false
	}
	for _, p := range patterns {
		if matchType(strings.ToLower(p), mt) {
			return true
		}
	}
	return false
}

func matchType(pattern, mediaType string) bool {
	if pattern == "*/*" || pattern == "*" {
		return true
	}
	if major, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(mediaType, major+"/")
	}
	return pattern == mediaType
}

// validTypePattern checks an allow_types entry at config load.
func validTypePattern(p string) error {
	if p == "*/*" || p == "*" {
		return nil
	}
	major, minor, ok := strings.Cut(p, "/")
	if !ok || major == "" || minor == "" || major == "*" || strings.ContainsAny(p, " ;,") {
		return fmt.Errorf("allow_types: %q is not a media type or type/* pattern", p)
	}
	if strings.Contains(minor, "*") && minor != "*" {
		return fmt.Errorf("allow_types: %q: only a whole subtype can be a wildcard", p)
	}
	return nil
}

// queryValues returns the first value of each named query parameter (""
// when absent), as url.Values.Get would, without building the whole map:
// the signing routes read three parameters of every request.
func queryValues(raw string, names ...string) []string {
	out := make([]string, len(names))
	queryValuesInto(out, raw, names)
	return out
}

// queryValuesInto is queryValues writing into out (len(out) ==
// len(names) <= 64).
func queryValuesInto(out []string, raw string, names []string) {
	var found uint64
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" || strings.Contains(kv, ";") {
			continue // url.ParseQuery skips these too
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		for i, n := range names {
			if key == n && found&(1<<i) == 0 {
				if val, err := url.QueryUnescape(v); err == nil {
					out[i] = val
					found |= 1 << i
				}
			}
		}
	}
}
