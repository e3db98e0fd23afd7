package caddyoss

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
)

// ossSystemVars are the ${...} variables OSS fills in (protocol §4.4).
var ossSystemVars = map[string]bool{
	"bucket": true, "object": true, "etag": true, "size": true, "mimeType": true,
	"imageInfo.height": true, "imageInfo.width": true, "imageInfo.format": true,
	"crc64": true, "contentMd5": true, "vpcId": true, "clientIp": true,
	"reqId": true, "operation": true,
}

// templateVar is one whole ${name} placeholder.
var templateVar = regexp.MustCompile(`^\$\{([A-Za-z0-9_.:]+)\}$`)

// tplField is one field of a callback body template: a name and either an
// OSS variable or a constant.
type tplField struct {
	name     string
	variable string // "object", "x:user", …; "" for a constant
	constant string // the constant's value (JSON: its text for non-strings)
	jsonRaw  string // JSON templates: the constant as written
}

// bodyTemplate is a callback body template read as fields, so a callback
// body can be checked against it field by field: a form body
// (name=${var}&name=const) or a flat JSON object ({"name":${var},…}).
type bodyTemplate struct {
	json   bool
	fields []tplField
	byVar  map[string]string // variable → field name
}

// parseBodyTemplate reads a template; every value must be exactly one
// ${variable} or a constant, and every name must appear once.
func parseBodyTemplate(tpl string, isJSON bool) (*bodyTemplate, error) {
	t := &bodyTemplate{json: isJSON, byVar: map[string]string{}}
	var err error
	if isJSON {
		err = t.parseJSON(tpl)
	} else {
		err = t.parseForm(tpl)
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range t.fields {
		if seen[f.name] {
			return nil, fmt.Errorf("field %q appears twice", f.name)
		}
		seen[f.name] = true
		if f.variable == "" {
			continue
		}
		if !ossSystemVars[f.variable] && !(strings.HasPrefix(f.variable, "x:") && callbackVarName.MatchString(f.variable[2:])) {
			return nil, fmt.Errorf("field %q: ${%s} is not an OSS variable or an x:<name> custom variable", f.name, f.variable)
		}
		if other, dup := t.byVar[f.variable]; dup {
			return nil, fmt.Errorf("${%s} is used by both %q and %q", f.variable, other, f.name)
		}
		t.byVar[f.variable] = f.name
	}
	return t, nil
}

func (t *bodyTemplate) parseForm(tpl string) error {
	if tpl == "" {
		return errors.New("the body is empty")
	}
	for _, part := range strings.Split(tpl, "&") {
		rawName, rawValue, ok := strings.Cut(part, "=")
		name, err := url.QueryUnescape(rawName)
		if !ok || err != nil || name == "" {
			return fmt.Errorf("%q is not a name=value field", part)
		}
		f := tplField{name: name}
		if m := templateVar.FindStringSubmatch(rawValue); m != nil {
			f.variable = m[1]
		} else if strings.Contains(rawValue, "${") {
			return fmt.Errorf("field %q: a value must be one whole ${variable} or a constant", name)
		} else if f.constant, err = url.QueryUnescape(rawValue); err != nil {
			return fmt.Errorf("field %q: %v", name, err)
		}
		t.fields = append(t.fields, f)
	}
	return nil
}

// jsonVarMarker stands for a ${variable} while the JSON template is parsed.
const jsonVarMarker = "\x00var:"

var anyTemplateVar = regexp.MustCompile(`\$\{[^}]*\}`)

func (t *bodyTemplate) parseJSON(tpl string) error {
	if strings.Contains(tpl, `"${`) {
		return errors.New(`write JSON placeholders without quotes ("object":${object}): OSS adds them`)
	}
	marked := anyTemplateVar.ReplaceAllStringFunc(tpl, func(v string) string {
		b, _ := json.Marshal(jsonVarMarker + v[2:len(v)-1])
		return string(b)
	})
	dec := json.NewDecoder(strings.NewReader(marked))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("a JSON body must be one flat JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("a JSON body must be one flat JSON object")
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("field %q: %v", name, err)
		}
		f := tplField{name: name}
		var s string
		switch {
		case json.Unmarshal(raw, &s) == nil && strings.HasPrefix(s, jsonVarMarker):
			f.variable = strings.TrimPrefix(s, jsonVarMarker)
		case raw[0] == '{' || raw[0] == '[':
			return fmt.Errorf("field %q: values must be a ${variable} or a string, number, boolean or null", name)
		default:
			if strings.Contains(string(raw), `\u0000`) {
				return fmt.Errorf("field %q: a value must be one whole ${variable} or a constant", name)
			}
			f.constant = jsonScalarText(raw)
			f.jsonRaw = string(raw)
		}
		t.fields = append(t.fields, f)
	}
	if _, err := dec.Token(); err != nil {
		return errors.New("a JSON body must be one flat JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("a JSON body must be one flat JSON object, with nothing after it")
	}
	return nil
}

// jsonScalarText is a JSON scalar as the body parser reports it: strings
// decoded, null empty, numbers and booleans as written.
func jsonScalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

// withField returns a copy of the template with one more variable field.
func (t *bodyTemplate) withField(name, variable string) *bodyTemplate {
	c := &bodyTemplate{json: t.json, byVar: map[string]string{}}
	c.fields = append(append(c.fields, t.fields...), tplField{name: name, variable: variable})
	for k, v := range t.byVar {
		c.byVar[k] = v
	}
	c.byVar[variable] = name
	return c
}

// render writes the template OSS receives in the callback parameter.
func (t *bodyTemplate) render() string {
	return t.renderWith(nil)
}

// ossNumberVars are the variables OSS writes into a JSON body as bare
// numbers (null when empty); it quotes every other value.
var ossNumberVars = map[string]bool{
	"size": true, "crc64": true, "imageInfo.height": true, "imageInfo.width": true,
}

// renderWith writes the template with each ${variable} replaced by its
// value in values, as OSS substitutes them (protocol §4.4): URL-encoded in
// a form body; in a JSON body a JSON string, or for the numeric variables
// the bare number (null when empty). The body is the one OSS would have
// sent for those values. With values nil, the variables stay ${...}.
func (t *bodyTemplate) renderWith(values map[string]string) string {
	var b strings.Builder
	if t.json {
		b.WriteByte('{')
	}
	for i, f := range t.fields {
		if i > 0 {
			if t.json {
				b.WriteByte(',')
			} else {
				b.WriteByte('&')
			}
		}
		if t.json {
			name, _ := json.Marshal(f.name)
			b.Write(name)
			b.WriteByte(':')
		} else {
			b.WriteString(url.QueryEscape(f.name))
			b.WriteByte('=')
		}
		switch {
		case f.variable != "" && values == nil:
			b.WriteString("${" + f.variable + "}")
		case f.variable != "":
			b.WriteString(substituted(values[f.variable], ossNumberVars[f.variable], t.json))
		case t.json:
			b.WriteString(f.jsonRaw)
		default:
			b.WriteString(url.QueryEscape(f.constant))
		}
	}
	if t.json {
		b.WriteByte('}')
	}
	return b.String()
}

// substituted is a variable's value as OSS writes it into a body.
func substituted(v string, number, isJSON bool) string {
	switch {
	case !isJSON:
		return url.QueryEscape(v)
	case number && v == "":
		return "null"
	case number && isDigits(v):
		return v
	}
	q, _ := json.Marshal(v) // a string always encodes
	return string(q)
}

// isDigits reports whether s is a run of ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseBody reads a callback body that must have been rendered from the
// template: exactly the template's fields, each once, constants unchanged.
// It returns the value of each variable.
func (t *bodyTemplate) parseBody(body []byte) (map[string]string, error) {
	got, err := t.bodyFields(body)
	if err != nil {
		return nil, err
	}
	if len(got) != len(t.fields) {
		return nil, fmt.Errorf("callback body has %d fields, the template %d", len(got), len(t.fields))
	}
	vars := make(map[string]string, len(t.byVar))
	for _, f := range t.fields {
		v, ok := got[f.name]
		switch {
		case !ok:
			return nil, fmt.Errorf("callback body lacks the field %q", f.name)
		case f.variable == "" && v != f.constant:
			return nil, fmt.Errorf("callback body changes the constant field %q", f.name)
		case f.variable != "":
			vars[f.variable] = v
		}
	}
	return vars, nil
}

var errBodyShape = errors.New("callback body is not in the configured body format")

// bodyFields splits a form or flat JSON body into fields, refusing
// duplicates (an app might read the first copy, the check the last).
func (t *bodyTemplate) bodyFields(body []byte) (map[string]string, error) {
	out := map[string]string{}
	add := func(name, value string) error {
		if _, dup := out[name]; dup {
			return fmt.Errorf("callback body repeats the field %q", name)
		}
		out[name] = value
		return nil
	}
	if !t.json {
		if len(body) == 0 {
			return out, nil
		}
		for _, part := range strings.Split(string(body), "&") {
			rawName, rawValue, _ := strings.Cut(part, "=")
			name, err1 := url.QueryUnescape(rawName)
			value, err2 := url.QueryUnescape(rawValue)
			if err1 != nil || err2 != nil {
				return nil, errBodyShape
			}
			if err := add(name, value); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errBodyShape
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errBodyShape
		}
		name, _ := tok.(string)
		v, err := dec.Token()
		if err != nil {
			return nil, errBodyShape
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = fmt.Sprint(v)
		case nil:
		default: // nested objects and arrays
			return nil, errBodyShape
		}
		if err := add(name, s); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, errBodyShape
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errBodyShape
	}
	return out, nil
}
