package caddyoss

import (
	"errors"
	"regexp"
	"strings"

	"github.com/alibabacloud-go/tea/tea"
)

// stsErrorSummary reduces an error of an AssumeRole call to text that is
// safe to log. The SDK's errors are not: a network error (*url.Error) quotes
// the whole signed request URL, whose Signature, SignatureNonce and
// AccessKeyId let anyone who reads the log replay it for fresh credentials
// within its validity window; an error answer's message may echo the
// request, and an undecodable answer, which may hold credentials, is quoted
// in the decoding error.
func stsErrorSummary(err error) string {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return redactSecrets(tea.StringValue(se.Code) + ": " + tea.StringValue(se.Message))
	}
	msg := err.Error()
	// An answer that is JSON but not an object is quoted in full
	// ("<answer> is not a map[string]interface{}"), and a field of the wrong
	// type with a window of the answer around it (", error found in #N byte
	// of ...|<answer>|..."); only the complaint is kept.
	if strings.HasSuffix(msg, " is not a map[string]interface{}") {
		return "the answer is not a JSON object"
	}
	if i := strings.Index(msg, ", error found in #"); i >= 0 {
		msg = msg[:i]
	}
	return redactSecrets(msg)
}

// redactError is err's text with URL queries and credential parameters
// removed, for logs.
func redactError(err error) string { return redactSecrets(err.Error()) }

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

// redactSecrets cuts every URL in s down to scheme://host/path and
// replaces the values of credential and signature parameters wherever they
// appear.
func redactSecrets(s string) string {
	s = urlInText.ReplaceAllStringFunc(s, redactURL)
	return secretParam.ReplaceAllString(s, "${1}${2}${3}REDACTED")
}

// redactURL keeps scheme://host/path of an absolute URL: the query (of a
// signed request: its signature) and any user info are dropped.
func redactURL(raw string) string {
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
