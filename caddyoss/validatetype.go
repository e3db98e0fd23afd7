package caddyoss

import (
	"errors"
	"fmt"
	"mime"
	"strings"
)

// parseMediaType returns the lower-cased media type of a Content-Type
// value, as mime.ParseMediaType does, without its allocations for the
// common value with no parameters.
func parseMediaType(v string) (string, error) {
	if strings.IndexByte(v, ';') >= 0 {
		mt, _, err := mime.ParseMediaType(v)
		return mt, err
	}
	mt := strings.TrimSpace(strings.ToLower(v))
	major, minor, slash := strings.Cut(mt, "/")
	if !isMIMEToken(major) || slash && !isMIMEToken(minor) {
		return "", errMediaType
	}
	return mt, nil
}

var errMediaType = errors.New("mime: expected token after slash")

// isMIMEToken reports whether s is a non-empty RFC 2045 token.
func isMIMEToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// topLevelTypes are the IANA top-level media types.
var topLevelTypes = map[string]bool{
	"application": true, "audio": true, "font": true, "image": true, "message": true, "model": true, "multipart": true, "text": true, "video": true,
}

// misspelledTypes maps media types that are common mistakes to the
// registered type browsers and OSS use. Only clear mistakes are listed: a
// type some platform does send (image/x-png, audio/x-wav) is left alone.
var misspelledTypes = map[string]string{
	"image/jpg":  "image/jpeg",
	"image/svg":  "image/svg+xml",
	"image/tif":  "image/tiff",
	"text/js":    "text/javascript",
	"audio/mp3":  "audio/mpeg",
	"video/mov":  "video/quicktime",
	"video/mp3":  "audio/mpeg",
	"audio/mp4a": "audio/mp4",
}

// pluralTopLevel maps plural or misspelled top-level types to the type.
var pluralTopLevel = map[string]string{
	"images": "image", "img": "image", "picture": "image", "pictures": "image", "photo": "image",
	"videos": "video", "movie": "video", "audios": "audio", "sound": "audio",
	"texts": "text", "fonts": "font", "models": "model",
	"applications": "application", "app": "application", "messages": "message",
}

// checkTypeSpelling refuses a media type or type/* pattern whose top-level
// type IANA does not register (images/*: image/*), and the common
// misspellings of a registered type (image/jpg: image/jpeg), naming the
// one to write. field names the option in the message. Placeholders are
// checked per request.
func checkTypeSpelling(field, t string) error {
	if t == "*/*" || t == "*" || strings.Contains(t, "{") {
		return nil
	}
	mt := strings.ToLower(strings.TrimSpace(t))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	major, minor, ok := strings.Cut(mt, "/")
	if !ok {
		return nil // the syntax checks report it
	}
	if !topLevelTypes[major] {
		if fix, known := pluralTopLevel[major]; known {
			return fmt.Errorf("%s: %q has no top-level type %q; write %q", field, t, major, fix+"/"+minor)
		}
		return fmt.Errorf("%s: %q: %q is not a media type's top-level type (application, audio, font, image, message, model, multipart, text, video)", field, t, major)
	}
	if fix, known := misspelledTypes[mt]; known {
		return fmt.Errorf("%s: %q is not the registered media type; browsers send %q, write that", field, t, fix)
	}
	return nil
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
