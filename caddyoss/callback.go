package caddyoss

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// bindingVar is the custom variable that carries a callback's binding.
const bindingVar = callback.Var

// customVars are the custom variables among vars (keyed x:<name>, as OSS
// names them), by name without "x:", the binding left out: what a binding
// covers, a confirm token carries and upload_verified reports. Never nil.
func customVars(vars map[string]string) map[string]string {
	out := make(map[string]string, len(vars))
	for k, v := range vars {
		if name, ok := strings.CutPrefix(k, "x:"); ok && name != bindingVar {
			out[name] = v
		}
	}
	return out
}

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
		// OSS sends no TLS server name unless asked (protocol §4.1).
		SNI bool `json:"callbackSNI,omitempty"`
	}{c.URL, c.Host, c.bodyTemplate(), c.contentType(), u.Scheme == "https" && !c.DisableSNI}
	b, err := jsonw.Marshal(m)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// bodyTemplate is the template OSS receives (see effectiveBody).
func (c *CallbackConfig) bodyTemplate() string {
	if c.renderedBody != "" {
		return c.renderedBody
	}
	b, _, _ := c.effectiveBody()
	return b
}

// effectiveBody is the configured or default body plus, unless verify_only,
// the binding field, together with the parsed template bound callbacks are
// checked against. Its errors name what to change in the body.
func (c *CallbackConfig) effectiveBody() (string, *bodyTemplate, error) {
	raw := c.Body
	if raw == "" {
		raw = c.defaultBody()
	}
	if c.VerifyOnly {
		return raw, nil, nil
	}
	t, err := parseBodyTemplate(raw, c.BodyType == bodyTypeJSON)
	if err != nil {
		return "", nil, fmt.Errorf("callback.body: %v (callbacks are checked field by field; set verify_only to send any template unchecked)", err)
	}
	added := c.handlerVars()
	for _, name := range added {
		if _, ok := t.byVar["x:"+name]; ok {
			return "", nil, fmt.Errorf("callback.body: ${x:%s} is added by the handler; remove it", name)
		}
	}
	if _, ok := t.byVar["object"]; !ok {
		return "", nil, errors.New("callback.body must carry ${object}, which bound callbacks are checked against")
	}
	for _, f := range t.fields {
		if slices.Contains(added, f.name) {
			return "", nil, fmt.Errorf("callback.body: the field name %q is reserved", f.name)
		}
		if name, ok := strings.CutPrefix(f.variable, "x:"); ok {
			if _, defined := c.Vars[name]; !defined {
				return "", nil, fmt.Errorf("callback.body uses ${x:%s}, which no var defines", name)
			}
		}
	}
	for _, name := range c.varNames() {
		if _, ok := t.byVar["x:"+name]; !ok {
			return "", nil, fmt.Errorf("callback.body does not use var %q: add a field with ${x:%s}", name, name)
		}
	}
	for _, name := range added {
		t = t.withField(name, "x:"+name)
	}
	return t.render(), t, nil
}

// otherQuotaTemplate is the bound body template with the quota's fields
// if this config has no quota, or without them if it has one: the
// template of callbacks and confirm tokens signed before a reload turned
// the quota on or off, accepted so that uploads in flight across the
// reload still reach the app. Their bindings, which cover every variable,
// were issued with the quota as it was; uploads signed without one are
// not charged. nil with verify_only, or when the other template cannot
// be (a var of this config without a quota uses a quota variable's name).
func (c *CallbackConfig) otherQuotaTemplate() *bodyTemplate {
	if c.VerifyOnly {
		return nil
	}
	for _, name := range []string{quotaIDVar, quotaKeyVar} {
		if _, ok := c.Vars[name]; ok {
			return nil
		}
	}
	c.quota = !c.quota
	defer func() { c.quota = !c.quota }()
	_, tpl, err := c.effectiveBody()
	if err != nil {
		return nil
	}
	return tpl
}

// handlerVars are the custom variables the handler adds to every bound
// callback body, in the order of their fields: the quota's reservation
// (with a quota) and the binding, last.
func (c *CallbackConfig) handlerVars() []string {
	if c.quota {
		return []string{quotaIDVar, quotaKeyVar, bindingVar}
	}
	return []string{bindingVar}
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

// appendSTSCallback tells SDK clients of the STS route about the callback:
// "Callback", the option object ali-oss's put and multipartUpload take as
// `callback` ({url, host, body, contentType, customValue}), and
// "CallbackHeaders", the two headers any other SDK sends (x-oss-callback,
// x-oss-callback-var). vars are keyed x:<name>.
func (c *CallbackConfig) appendSTSCallback(o *jsonw.Object, param string, vars map[string]string) error {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	o.Object("Callback", func(cb *jsonw.Object) {
		cb.Str("url", c.URL)
		if c.Host != "" {
			cb.Str("host", c.Host)
		}
		cb.Str("body", c.bodyTemplate())
		cb.Str("contentType", c.contentType())
		if len(vars) > 0 {
			cb.Object("customValue", func(cv *jsonw.Object) {
				for _, k := range names {
					cv.Str(strings.TrimPrefix(k, "x:"), vars[k])
				}
			})
		}
	})
	varParam, err := callbackVarParam(vars)
	if err != nil {
		return err
	}
	o.Object("CallbackHeaders", func(hd *jsonw.Object) {
		hd.Str("x-oss-callback", param)
		if varParam != "" {
			hd.Str("x-oss-callback-var", varParam)
		}
	})
	return nil
}

// callbackVarParam is the base64 `callback-var` parameter for presigned
// URLs (PostObject sends each variable as its own x:<name> field instead).
func callbackVarParam(vars map[string]string) (string, error) {
	if len(vars) == 0 {
		return "", nil
	}
	b, err := jsonw.Marshal(vars)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
