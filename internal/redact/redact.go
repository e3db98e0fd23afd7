// Package redact removes secrets from error texts before they are logged:
// the queries of signed request URLs, and the values of credential and
// signature parameters in the forms errors carry them.
package redact

import (
	"regexp"
	"strings"
)

// Error is err's text with URL queries and credential parameters removed,
// for logs.
func Error(err error) string { return Secrets(err.Error()) }

var (
	// urlInText matches an absolute URL inside a longer text, e.g. the
	// quoted one in a *url.Error.
	urlInText = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s"'<>` + "`" + `]+`)
	// secretParam matches a credential or signature parameter with its
	// value in the forms error texts carry them: a query or form
	// (Signature=…&), a percent-encoded string to sign
	// (SignatureNonce%3D…%26), JSON ("SecurityToken":"…") and Go's
	// printing of url.Values (Signature:[…]). The name must not follow a
	// letter or digit, unless that ends a percent-encoded separator.
	secretParam = regexp.MustCompile(`(?i)(^|[^a-z0-9]|%[0-9a-f]{2})` +
		`((?:oss)?access[-_]?key[-_]?(?:id|secret)|signature(?:[-_]?nonce)?|security[-_]?token|bearer[-_]?token)` +
		`(\\?"?\s*(?:=|%3D|:)\s*\[?\\?"?)(?:[^&\s"'\\,;}\]%]|%(?:[013-9a-f][0-9a-f]|2[0-57-9a-f]))+`)
)

// Secrets cuts every URL in s down to scheme://host/path and replaces the
// values of credential and signature parameters wherever they appear.
func Secrets(s string) string {
	s = urlInText.ReplaceAllStringFunc(s, URL)
	return secretParam.ReplaceAllString(s, "${1}${2}${3}REDACTED")
}

// URL keeps scheme://host/path of an absolute URL: the query (of a signed
// request: its signature) and any user info are dropped.
func URL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	if hasPath {
		return scheme + "://" + authority + "/" + path
	}
	return scheme + "://" + authority
}
