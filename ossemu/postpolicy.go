package ossemu

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// postCondition is one parsed policy condition.
type postCondition struct {
	op     string // eq, starts-with, in, not-in, content-length-range
	field  string // lower-case, without '$'
	value  string
	list   []string
	min    int64
	max    int64
	echo   string // as OSS echoes it in errors
	simple bool
}

type postPolicy struct {
	expiration time.Time
	conditions []postCondition
}

func errPolicyDoc(msg string) *ossError {
	return newErr(http.StatusBadRequest, "InvalidPolicyDocument", "Invalid Policy: "+msg)
}

// parsePostPolicy decodes the base64 policy field and its JSON grammar.
func parsePostPolicy(b64 string) (*postPolicy, *ossError) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errPolicyDoc("Invalid Base64 Encoding.")
	}
	raw, ok := unescapeDollar(raw)
	if !ok {
		return nil, errPolicyDoc("Invalid JSON.")
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, errPolicyDoc("Invalid JSON.")
	}
	// The document is one JSON object and nothing after it.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errPolicyDoc("Invalid JSON: unexpected characters after the policy.")
	}
	var exp string
	if doc["expiration"] == nil || json.Unmarshal(doc["expiration"], &exp) != nil || exp == "" {
		return nil, errPolicyDoc("Invalid JSON: expiration is missing or not a string.")
	}
	t, err := time.Parse(time.RFC3339Nano, exp)
	if err != nil || !strings.HasSuffix(exp, "Z") {
		return nil, errPolicyDoc("Invalid expiration: " + exp + " is not an ISO 8601 UTC time.")
	}
	var conds []json.RawMessage
	if doc["conditions"] == nil || json.Unmarshal(doc["conditions"], &conds) != nil {
		return nil, errPolicyDoc("Invalid JSON: conditions is missing or not a list.")
	}
	if len(conds) == 0 {
		return nil, errPolicyDoc("conditions must contain at least one item.")
	}
	p := &postPolicy{expiration: t}
	for _, c := range conds {
		pc, oe := parseCondition(c)
		if oe != nil {
			return nil, oe
		}
		p.conditions = append(p.conditions, pc)
	}
	return p, nil
}

func parseCondition(c json.RawMessage) (postCondition, *ossError) {
	c = bytes.TrimSpace(c)
	if len(c) > 0 && c[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(c, &m); err != nil {
			return postCondition{}, errPolicyDoc("Invalid JSON.")
		}
		if len(m) != 1 {
			return postCondition{}, errPolicyDoc("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.")
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return postCondition{}, errPolicyDoc("Invalid Simple-Condition: value must be a string.")
			}
			return postCondition{op: "eq", field: strings.ToLower(k), value: s, simple: true,
				echo: fmt.Sprintf(`["eq", "$%s", "%s"]`, k, s)}, nil
		}
	}
	var arr []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(c))
	dec.UseNumber()
	if err := dec.Decode(&arr); err != nil || len(arr) == 0 {
		return postCondition{}, errPolicyDoc("Invalid JSON: , or ] expected")
	}
	var op string
	if json.Unmarshal(arr[0], &op) != nil {
		return postCondition{}, errPolicyDoc("Invalid Condition: the operator must be a string.")
	}
	// Operators are lower-case: "EQ" or "Starts-With" is no operator.
	switch op {
	case "content-length-range":
		if len(arr) != 3 {
			return postCondition{}, errPolicyDoc("Invalid content-length-range: it takes a minimum and a maximum.")
		}
		// The bounds are JSON integers; "1" (a string) is refused as OSS
		// refuses it.
		min, ok1 := jsonInteger(arr[1])
		max, ok2 := jsonInteger(arr[2])
		if !ok1 || !ok2 {
			return postCondition{}, errPolicyDoc("Invalid JSON.")
		}
		if min < 0 || max < min {
			return postCondition{}, errPolicyDoc("Invalid content-length-range: " + string(arr[1]) + ", " + string(arr[2]))
		}
		return postCondition{op: "content-length-range", min: min, max: max}, nil
	case "eq", "starts-with", "in", "not-in":
		if len(arr) != 3 {
			return postCondition{}, errPolicyDoc("Invalid Condition: " + op + " takes a field and a value.")
		}
		var field string
		if json.Unmarshal(arr[1], &field) != nil || !strings.HasPrefix(field, "$") {
			return postCondition{}, errPolicyDoc("Invalid Condition: the field must be a string starting with $.")
		}
		pc := postCondition{op: op, field: strings.ToLower(field[1:])}
		if pc.op == "in" || pc.op == "not-in" {
			if json.Unmarshal(arr[2], &pc.list) != nil {
				return postCondition{}, errPolicyDoc("Invalid Condition: " + op + " takes a list of strings.")
			}
			quoted, _ := json.Marshal(pc.list)
			pc.echo = fmt.Sprintf(`["%s", "%s", %s]`, op, field, quoted)
		} else {
			if json.Unmarshal(arr[2], &pc.value) != nil {
				return postCondition{}, errPolicyDoc("Invalid Condition: " + op + " takes a string value.")
			}
			pc.echo = fmt.Sprintf(`["%s", "%s", "%s"]`, op, field, pc.value)
		}
		return pc, nil
	}
	return postCondition{}, errPolicyDoc("Invalid Condition: unknown operator " + op + ".")
}

// jsonInteger reads a JSON integer literal: no string, no fraction, no
// exponent.
func jsonInteger(v json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	return n, err == nil
}

// unescapeDollar turns each \$ inside a JSON string into $: policies write
// a literal $ that way, and it is no JSON escape. Other escapes are left
// for the JSON parser; ok is false when a string is left open.
func unescapeDollar(raw []byte) ([]byte, bool) {
	if !bytes.Contains(raw, []byte(`\$`)) {
		return raw, true
	}
	out := make([]byte, 0, len(raw))
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && i+1 < len(raw):
			if raw[i+1] == '$' {
				out = append(out, '$')
			} else {
				out = append(out, c, raw[i+1])
			}
			i++
			continue
		}
		out = append(out, c)
	}
	return out, !inString
}

// check evaluates every condition against the form fields (lower-case
// names), the request's bucket and the file size. OSS documents that a
// condition on a field the form does not carry fails; that holds here for
// every operator, not-in included, so a form the emulator accepts is never
// one OSS may refuse for a missing field.
func (p *postPolicy) check(fields map[string]string, bucketName string, size int64) *ossError {
	for _, c := range p.conditions {
		if c.op == "content-length-range" {
			if size > c.max {
				return newErr(http.StatusBadRequest, "EntityTooLarge",
					"Your proposed upload exceeds the maximum allowed size.").ec("0006-00000003")
			}
			if size < c.min {
				return newErr(http.StatusBadRequest, "EntityTooSmall",
					"Your proposed upload is smaller than the minimum allowed size.").ec("0006-00000004")
			}
			continue
		}
		v, present := fields[c.field]
		if c.field == "bucket" {
			v, present = bucketName, true
		}
		ok := false
		switch c.op {
		case "eq":
			ok = present && v == c.value
		case "starts-with":
			ok = present && strings.HasPrefix(v, c.value)
		case "in":
			ok = present && contains(c.list, v)
		case "not-in":
			ok = present && !contains(c.list, v)
		}
		if !ok {
			return errAccessDenied("Invalid according to Policy: Policy Condition failed: " + c.echo)
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// constrains reports whether an eq condition pins field.
func (p *postPolicy) constrains(field string) bool {
	for _, c := range p.conditions {
		if c.op == "eq" && c.field == field {
			return true
		}
	}
	return false
}
