package callback

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// A confirm token is what a signing answer gives an uploader for the
// confirm route: the binding the answer issued and the custom variables it
// covers, in one string,
//
//	<binding>.<base64url JSON object of the custom variables>
//
// The variables are the binding's own (by name without "x:", the binding
// itself left out), as a JSON object with its keys sorted ({} when there
// are none), so a token has exactly one accepted spelling, as a binding
// has. Nothing in it is secret: the binding's MAC is what makes it
// unforgeable, and it covers every variable.

// ErrMalformedToken is a confirm token that is not in its one accepted
// spelling.
var ErrMalformedToken = errors.New("confirm token is malformed")

// ConfirmToken writes the token of a binding (in its one spelling) and the
// custom variables it covers.
func ConfirmToken(binding string, vars map[string]string) string {
	if vars == nil {
		vars = map[string]string{}
	}
	b, _ := json.Marshal(vars) // a map of strings always encodes; keys sorted
	return binding + "." + base64.RawURLEncoding.EncodeToString(b)
}

// ParseConfirmToken reads a confirm token, accepting only its one
// spelling: the binding's, then the variables as ConfirmToken writes them
// (no other key order, spacing or escaping, no repeated or non-string
// value, valid UTF-8). Whether the binding's MAC covers the variables is
// the caller's check.
func ParseConfirmToken(tok string) (Binding, map[string]string, error) {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return Binding{}, nil, ErrMalformedToken
	}
	b, err := Parse(tok[:i])
	if err != nil {
		return Binding{}, nil, ErrMalformedToken
	}
	raw, ok := strictBase64(tok[i+1:])
	if !ok {
		return Binding{}, nil, ErrMalformedToken
	}
	var vars map[string]string
	if err := json.Unmarshal(raw, &vars); err != nil || vars == nil {
		return Binding{}, nil, ErrMalformedToken
	}
	if again, _ := json.Marshal(vars); string(again) != string(raw) {
		return Binding{}, nil, ErrMalformedToken
	}
	if _, ok := vars[Var]; ok {
		return Binding{}, nil, ErrMalformedToken
	}
	return b, vars, nil
}
