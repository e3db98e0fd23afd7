package caddyoss

import (
	"errors"
	"strings"

	"github.com/alibabacloud-go/tea/tea"

	"github.com/caddy-oss/caddy-oss/internal/redact"
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
		return redact.Secrets(tea.StringValue(se.Code) + ": " + tea.StringValue(se.Message))
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
	return redact.Secrets(msg)
}
