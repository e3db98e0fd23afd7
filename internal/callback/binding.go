package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A binding ties a callback to the signing decision that issued it.
// Alibaba signs every customer's callbacks with one key, so a valid
// signature only proves that OSS sent a callback; the binding proves that
// one handler authorized the upload it reports. It travels as the custom
// variable x:oss_binding, which OSS copies into the callback body:
//
//	2.<kind>.<expiry unix>.<base64url scope>.<base64url HMAC-SHA256>
//
// The HMAC covers the kind, the bucket, the scope (the exact key, or the
// prefix), the expiry and every other custom variable, under a key derived
// for the issuing handler (HandlerKey). Each binding has exactly one
// accepted spelling: the expiry in digits without sign or leading zeros,
// the scope and MAC in unpadded base64url without stray bytes.
const (
	// Var is the custom variable (without "x:") that carries the binding.
	Var = "oss_binding"

	version = "2"
)

// Kind says how the key of a bound upload was decided.
type Kind byte

const (
	// ExactKey: the server chose the exact key (PostObject, presigned PUT,
	// Uppy multipart). The scope is the callback's object, so the binding
	// carries none.
	ExactKey Kind = 'k'
	// Prefix: the client names the key below the prefix (PostObject with
	// client_keys).
	Prefix Kind = 'p'
	// STS: the client holds STS credentials below the prefix and writes
	// the callback parameter itself.
	STS Kind = 's'
)

// Binding is a parsed x:oss_binding value.
type Binding struct {
	Kind   Kind
	Expiry int64  // unix seconds
	Scope  string // the prefix; "" for ExactKey (and for an empty prefix)
	MAC    []byte
}

// ErrMalformed is a binding that is not in its one accepted spelling.
var ErrMalformed = errors.New("callback binding is malformed")

// MAC computes the HMAC of a binding. Variable names are [a-z0-9_] and no
// part may contain NUL (expanded values with control characters are
// refused), so NUL separators make the message unambiguous.
func MAC(key []byte, kind Kind, bucket, scope string, expiry int64, vars map[string]string) []byte {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	b := make([]byte, 0, 128)
	b = append(b, "caddy-oss binding "+version+"\x00"...)
	b = append(b, byte(kind), 0)
	b = append(b, bucket...)
	b = append(b, 0)
	b = append(b, scope...)
	b = append(b, 0)
	b = strconv.AppendInt(b, expiry, 10)
	b = append(b, 0)
	for _, n := range names {
		b = append(b, n...)
		b = append(b, 0)
		b = append(b, vars[n]...)
		b = append(b, 0)
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(nil)
}

// Encode signs a binding with a handler's key. vars are the other custom
// variables by name without "x:".
func Encode(key []byte, kind Kind, bucket, scope string, expiry time.Time, vars map[string]string) string {
	exp := expiry.Unix()
	carried := scope
	if kind == ExactKey {
		carried = ""
	}
	return Binding{Kind: kind, Expiry: exp, Scope: carried, MAC: MAC(key, kind, bucket, scope, exp, vars)}.String()
}

// String is the binding's one spelling.
func (b Binding) String() string {
	return version + "." + string(rune(b.Kind)) + "." + strconv.FormatInt(b.Expiry, 10) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(b.Scope)) + "." +
		base64.RawURLEncoding.EncodeToString(b.MAC)
}

// Parse reads an x:oss_binding value, accepting only its one spelling.
func Parse(v string) (Binding, error) {
	var b Binding
	parts := strings.Split(v, ".")
	if len(parts) != 5 || parts[0] != version || len(parts[1]) != 1 {
		return b, ErrMalformed
	}
	b.Kind = Kind(parts[1][0])
	if b.Kind != ExactKey && b.Kind != Prefix && b.Kind != STS {
		return b, ErrMalformed
	}
	if !canonicalDigits(parts[2]) {
		return b, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return b, ErrMalformed
	}
	b.Expiry = exp
	scope, ok := strictBase64(parts[3])
	if !ok || (b.Kind == ExactKey && len(scope) != 0) {
		return b, ErrMalformed
	}
	b.Scope = string(scope)
	if b.MAC, ok = strictBase64(parts[4]); !ok || len(b.MAC) != sha256.Size {
		return b, ErrMalformed
	}
	return b, nil
}

// canonicalDigits reports whether s is a positive decimal number written
// without sign or leading zeros.
func canonicalDigits(s string) bool {
	if s == "" || len(s) > 18 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// strictBase64 decodes unpadded base64url that encodes back to the same
// text: no padding, no line breaks (which decoders skip), no stray bits.
func strictBase64(s string) ([]byte, bool) {
	d, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || base64.RawURLEncoding.EncodeToString(d) != s {
		return nil, false
	}
	return d, true
}

// HandlerKey derives the key one handler signs and checks bindings with
// from the key shared by every instance (binding_key, or the one kept in
// Caddy's storage) and the handler's identity: a binding issued by one
// handler never checks on another.
func HandlerKey(shared []byte, handlerID string) []byte {
	m := hmac.New(sha256.New, shared)
	m.Write([]byte("caddy-oss handler key " + version + "\x00" + handlerID))
	return m.Sum(nil)
}
