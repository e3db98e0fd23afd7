package ossemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ramPolicy is a parsed RAM policy: statements of Effect, Action and
// Resource, with * and ? wildcards. Anything not allowed is denied, and an
// explicit Deny wins.
type ramPolicy struct{ statements []ramStatement }

type ramStatement struct {
	allow     bool
	actions   []string
	resources []string
}

// stringOrList accepts "x" or ["x", "y"].
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*s = many
	return nil
}

func parseRAMPolicy(doc string) (*ramPolicy, error) {
	var raw struct {
		Version   string
		Statement []map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if raw.Version != "1" {
		return nil, errors.New(`the Version must be "1"`)
	}
	if len(raw.Statement) == 0 {
		return nil, errors.New("the Statement is missing or empty")
	}
	p := &ramPolicy{}
	for i, st := range raw.Statement {
		var s ramStatement
		for k, v := range st {
			var err error
			switch k {
			case "Effect":
				var eff string
				if err = json.Unmarshal(v, &eff); err == nil {
					switch eff {
					case "Allow":
						s.allow = true
					case "Deny":
					default:
						err = errors.New(`must be "Allow" or "Deny"`)
					}
				}
			case "Action":
				err = (*stringOrList)(&s.actions).UnmarshalJSON(v)
			case "Resource":
				err = (*stringOrList)(&s.resources).UnmarshalJSON(v)
			case "Condition", "NotAction", "NotResource", "Principal":
				err = errors.New("is not evaluated by this emulator")
			default:
				err = errors.New("is not a statement element")
			}
			if err != nil {
				return nil, fmt.Errorf("the element %s of statement %d %v", k, i, err)
			}
		}
		if _, ok := st["Effect"]; !ok || len(s.actions) == 0 || len(s.resources) == 0 {
			return nil, fmt.Errorf("statement %d needs Effect, Action and Resource", i)
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

// decide returns (allowed, explicitly denied) for an action on a resource.
func (p *ramPolicy) decide(action, resource string) (allowed, denied bool) {
	for _, s := range p.statements {
		if !matchAny(s.actions, action, true) || !matchAny(s.resources, resource, false) {
			continue
		}
		if s.allow {
			allowed = true
		} else {
			denied = true
		}
	}
	return allowed && !denied, denied
}

func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if wildcardMatch(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against p where, in p, * is any run and ? one
// character. In s both are plain characters: an object key may hold them,
// and a key u/*x is under the resource u/* like any other.
func wildcardMatch(pattern, str string) bool {
	p, s := []rune(pattern), []rune(str)
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(p) && p[px] == '*':
			star, mark = px, sx
			px++
		case px < len(p) && (p[px] == '?' || p[px] == s[sx]):
			px++
			sx++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// ramAction is the RAM action OSS checks for each operation.
var ramAction = map[string]string{
	"PutObject":               "oss:PutObject",
	"PostObject":              "oss:PutObject",
	"InitiateMultipartUpload": "oss:PutObject",
	"UploadPart":              "oss:PutObject",
	"CompleteMultipartUpload": "oss:PutObject",
	"AbortMultipartUpload":    "oss:AbortMultipartUpload",
	"ListParts":               "oss:ListParts",
	"GetObject":               "oss:GetObject",
	"HeadObject":              "oss:GetObject",
	"DeleteObject":            "oss:DeleteObject",
	"ListObjects":             "oss:ListObjects",
}

// authorize checks what an STS session may do: the role's policy and the
// session policy must both allow the action, and neither may deny it.
// Permanent keys may do what SetKeyActions left them (everything by
// default).
func (e *Emulator) authorize(p *principal, operation, bucketName, key string) *ossError {
	if p == nil {
		return nil
	}
	if p.session == nil {
		return e.authorizeKey(p, ramAction[operation], e.resourceARN(bucketName, key, operation != "ListObjects"))
	}
	action := ramAction[operation]
	resource := "acs:oss:" + e.region + ":" + p.session.role.account + ":" + bucketName
	if operation != "ListObjects" {
		resource += "/" + key
	}
	ok := true
	if rp := p.session.role.policy; rp != nil {
		ok, _ = rp.decide(action, resource)
	}
	if sp := p.session.policy; ok && sp != nil {
		ok, _ = sp.decide(action, resource)
	}
	if !ok {
		return errAccessDenied("You have no right to access this object because of RAM policy: " +
			action + " on " + resource + " is not allowed.")
	}
	return nil
}
