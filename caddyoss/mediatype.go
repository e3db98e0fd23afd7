package caddyoss

import (
	"errors"
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
