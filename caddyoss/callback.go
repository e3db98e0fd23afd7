package caddyoss

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Callback body types.
const (
	bodyTypeForm = "form"
	bodyTypeJSON = "json"
)

// callbackVarName is what OSS accepts after "x:" (lower case, per the docs).
var callbackVarName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// callbackParam is the base64 `callback` parameter OSS reads (protocol §4.1).
// It is built once at provision: nothing in it depends on the request.
func (c *CallbackConfig) callbackParam() (string, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("callback url must be an absolute http or https URL, got %q", c.URL)
	}
	m := struct {
		URL      string `json:"callbackUrl"`
		Host     string `json:"callbackHost,omitempty"`
		Body     string `json:"callbackBody"`
		BodyType string `json:"callbackBodyType"`
	}{c.URL, c.Host, c.bodyTemplate(), c.contentType()}
	b, err := marshalJSON(m)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// bodyTemplate is the configured body, or the default one.
func (c *CallbackConfig) bodyTemplate() string {
	if c.Body != "" {
		return c.Body
	}
	return c.defaultBody()
}

// contentType is the callbackBodyType OSS sends the body with.
func (c *CallbackConfig) contentType() string {
	if c.BodyType == bodyTypeJSON {
		return "application/json"
	}
	return "application/x-www-form-urlencoded"
}

// defaultBody sends the object's facts and every custom variable.
func (c *CallbackConfig) defaultBody() string {
	type field struct{ name, expr string }
	fields := []field{
		{"bucket", "${bucket}"}, {"object", "${object}"}, {"etag", "${etag}"},
		{"size", "${size}"}, {"mimeType", "${mimeType}"},
	}
	for _, name := range c.varNames() {
		fields = append(fields, field{name, "${x:" + name + "}"})
	}
	var b strings.Builder
	if c.BodyType == bodyTypeJSON {
		b.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", f.name, f.expr)
		}
		b.WriteByte('}')
		return b.String()
	}
	for i, f := range fields {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(f.name + "=" + f.expr)
	}
	return b.String()
}

// varNames returns the custom variable names, sorted.
func (c *CallbackConfig) varNames() []string {
	names := make([]string, 0, len(c.Vars))
	for k := range c.Vars {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// callbackVars expands request placeholders in the custom variables and
// returns them keyed "x:<name>".
func (c *CallbackConfig) callbackVars(repl *caddy.Replacer) map[string]string {
	if len(c.Vars) == 0 {
		return nil
	}
	out := make(map[string]string, len(c.Vars))
	for k, v := range c.Vars {
		out["x:"+k] = repl.ReplaceAll(v, "")
	}
	return out
}

// stsCallback is what the STS route tells SDK clients about the callback:
// the option object ali-oss's put and multipartUpload take as `callback`
// ({url, host, body, contentType, customValue}), and the two headers any
// other SDK sends (x-oss-callback, x-oss-callback-var).
func (c *CallbackConfig) stsCallback(param string, vars map[string]string) (map[string]any, map[string]string, error) {
	option := map[string]any{"url": c.URL, "body": c.bodyTemplate(), "contentType": c.contentType()}
	if c.Host != "" {
		option["host"] = c.Host
	}
	headers := map[string]string{"x-oss-callback": param}
	if len(vars) > 0 {
		custom := make(map[string]string, len(vars))
		for k, v := range vars {
			custom[strings.TrimPrefix(k, "x:")] = v
		}
		option["customValue"] = custom
		v, err := callbackVarParam(vars)
		if err != nil {
			return nil, nil, err
		}
		headers["x-oss-callback-var"] = v
	}
	return option, headers, nil
}

// callbackVarParam is the base64 `callback-var` parameter for presigned
// URLs (PostObject sends each variable as its own x:<name> field instead).
func callbackVarParam(vars map[string]string) (string, error) {
	if len(vars) == 0 {
		return "", nil
	}
	b, err := marshalJSON(vars)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// marshalJSON is json.Marshal without HTML escaping, so what is signed reads
// as written.
func marshalJSON(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
