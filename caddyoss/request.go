package caddyoss

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// What every signing route decides before it signs, from the request:
// the client's hints checked against the limits, the key prefix and object
// key, the credentials and the callback variables to issue.

// upload is what every signing route decides before it signs.
type upload struct {
	prefix string
	key    string
	hints  uploadHints
	creds  osssign.Credentials
	custom map[string]string // expanded custom callback variables by name
	route  string            // the signing route, for metrics
}

// prepareUpload checks the client's hints, decides the object key and gets
// the signing credentials, into up. w is only for the Retry-After of a 503.
func (h *Handler) prepareUpload(w http.ResponseWriter, r *http.Request, up *upload) error {
	var err error
	if up.hints, err = h.parseHints(r, r.URL.Path == h.PresignPath); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	repl := replacer(r)
	if up.prefix, err = h.keyPrefix(repl); err != nil {
		return h.forbidden(r, err)
	}
	if up.key, err = h.objectKey(repl, up.prefix, up.hints.filename); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	if h.issuesVars() {
		if up.custom, err = h.Callback.callbackVars(repl); err != nil {
			return h.forbidden(r, err)
		}
	}
	if up.creds, err = h.creds.get(); err != nil {
		return h.credentialsUnavailable(w, r, err)
	}
	return nil
}

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

// defaultKeyTemplate names objects by a random id plus the extension of the
// client's filename.
const defaultKeyTemplate = "{id}{ext}"

// maxKeyBytes is OSS's limit on object key length.
const maxKeyBytes = 1023

// maxNameBytes bounds the sanitized {filename}.
const maxNameBytes = 200

// newObjectID returns 128 random bits as 32 hex characters.
func newObjectID() string {
	var b [32]byte
	return string(appendObjectID(b[:0]))
}

// appendObjectID appends 128 random bits as 32 hex characters.
func appendObjectID(dst []byte) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.AppendEncode(dst, b[:])
}

// sanitizeFilename reduces a client-supplied filename to a safe single
// path segment: the base name only, control and separator characters
// replaced, dots trimmed from both ends, at most maxNameBytes. It returns ""
// when nothing usable is left.
func sanitizeFilename(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), ".")
	for len(s) > maxNameBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// sanitizeExt returns the lower-cased extension of a client filename with its
// dot (".png"), or "" when it has none or it is not a short alphanumeric run.
func sanitizeExt(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return ""
	}
	ext := name[i+1:]
	if ext == "" || len(ext) > 16 {
		return ""
	}
	lower := true
	for j := 0; j < len(ext); j++ {
		switch c := ext[j]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			lower = false
		default:
			return ""
		}
	}
	if lower {
		return name[i:] // already ".ext"
	}
	return "." + strings.ToLower(ext)
}

// keyPrefix expands request placeholders in the configured prefix and checks
// the result. A placeholder that expands to nothing is an error: a prefix
// such as uploads/{http.auth.user.id}/ must never collapse into a shared one.
func (h *Handler) keyPrefix(repl *caddy.Replacer) (string, error) {
	if !strings.Contains(h.KeyPrefix, "{") {
		return h.KeyPrefix, nil
	}
	tpl := &h.keyPrefixTpl
	if tpl.raw != h.KeyPrefix { // not provisioned, or changed since
		t := newRequestTemplate(h.KeyPrefix)
		tpl = &t
	}
	var buf [256]byte
	b, err := tpl.appendExpanded(buf[:0], repl)
	if err != nil {
		return "", fmt.Errorf("key_prefix: %v", err)
	}
	p := string(b)
	if err := checkKeyPart(p); err != nil {
		return "", fmt.Errorf("key_prefix expands to an invalid key prefix: %v", err)
	}
	// '*' and '?' would widen the STS session policy's resource to other
	// prefixes; '$' would let OSS substitute ${filename} after its policy
	// check.
	if err := checkExpanded(p); err != nil {
		return "", fmt.Errorf("key_prefix expands to a prefix that %v", err)
	}
	// Each placeholder is one path segment: a value with '/' would reach
	// into a prefix of another value's.
	if !h.scope.FitsPrefix(p) {
		return "", errors.New("key_prefix expands to a prefix with a placeholder value that is not one path segment (it contains '/')")
	}
	return p, nil
}

// objectKey generates the object key for an upload below prefix from the
// key template and the client's filename.
func (h *Handler) objectKey(repl *caddy.Replacer, prefix, filename string) (string, error) {
	tpl := h.KeyTemplate
	if tpl == "" {
		tpl = defaultKeyTemplate
	}
	var name string
	if tpl == defaultKeyTemplate {
		// The common case: prefix, random id and extension written into
		// one buffer, without a replacer.
		var buf [128]byte
		b := append(buf[:0], prefix...)
		b = appendObjectID(b)
		if ext := sanitizeExt(filename); ext != "" {
			b = append(b, ext...)
		}
		if len(b) > maxKeyBytes {
			return "", fmt.Errorf("object key longer than %d bytes", maxKeyBytes)
		}
		// keyPrefix checked the prefix (Validate a static one), and hex
		// digits and a sanitized extension add no segment, control
		// character or '$': only the length can fail.
		return string(b), nil
	} else {
		// Configured placeholders first, so nothing from the client is
		// ever interpreted as a placeholder.
		name = repl.ReplaceKnown(tpl, "")
		clean := sanitizeFilename(filename)
		if clean == "" {
			clean = "file"
		}
		name = strings.NewReplacer(
			"{id}", newObjectID(),
			"{ext}", sanitizeExt(filename),
			"{filename}", clean,
		).Replace(name)
	}
	key := prefix + name
	if name == "" || strings.HasSuffix(key, "/") {
		return "", errors.New("key_template produced an empty object name")
	}
	return key, checkObjectKey(key)
}

// callbackVars expands request placeholders in the custom variables and
// returns them by name. A value with a character that means something to
// OSS or RAM (a '$' starts ${...} substitution and policy references, '*'
// and '?' are wildcards) or a control character is refused: nothing is
// signed for it.
func (c *CallbackConfig) callbackVars(repl *caddy.Replacer) (map[string]string, error) {
	if len(c.Vars) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(c.Vars))
	for k, v := range c.Vars {
		val := repl.ReplaceAll(v, "")
		if err := checkExpanded(val); err != nil {
			return nil, fmt.Errorf("callback var %s expands to a value that %v", k, err)
		}
		out[k] = val
	}
	return out, nil
}

// issueVars returns the x:<name> variables a signing route issues: the
// expanded custom variables plus, unless verify_only, the binding that ties
// the callback, or the confirm, to this decision. nil when neither a
// callback nor a confirm is issued. The route sends them in the callback
// parameter only when it asks OSS for a callback (callbackB64 set), and
// in the confirm token (confirmToken) when the confirm route is on.
func (h *Handler) issueVars(ctx context.Context, custom map[string]string, kind callback.Kind, scope string, expiry time.Time) (map[string]string, error) {
	if !h.issuesVars() {
		return nil, nil
	}
	out := make(map[string]string, len(custom)+1)
	for k, v := range custom {
		out["x:"+k] = v
	}
	if h.Callback.VerifyOnly {
		return out, nil
	}
	key, err := h.bindingKeys.ForHandler(ctx)
	if err != nil {
		return nil, err
	}
	out["x:"+bindingVar] = callback.Encode(key, kind, h.Bucket, scope, expiry.Add(callback.Grace), custom)
	return out, nil
}
