package ossemu

// The callback parameter: decoding and checking it and callback-var, and
// rendering the body from the upload's facts.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // image formats for ${imageInfo.*}
	_ "image/jpeg"
	_ "image/png"
	"net/url"
	"strconv"
	"strings"
)

// callbackSpec is a decoded callback parameter.
type callbackSpec struct {
	urls     []string
	host     string
	body     string
	bodyType string
	// sni is callbackSNI: OSS sends a TLS server name to an https
	// callbackUrl only when the parameter asks for it.
	sni bool
}

// errCallbackArg is InvalidArgument about the callback parameter; ec is
// the documented error code, or "" where none is documented.
func errCallbackArg(msg, value, ec string) *ossError {
	return errInvalidArgument(msg, "callback", value).ec(ec)
}

// parseCallback decodes the callback parameter; empty means none.
func parseCallback(b64 string) (*callbackSpec, *ossError) {
	if b64 == "" {
		return nil, nil
	}
	if len(b64) > 5<<10 {
		return nil, errCallbackArg("The callback configuration is too long (over 5 KB).", "", "")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errCallbackArg("The callback configuration is not base64 encoded.", b64, "0007-00000002")
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, errCallbackArg("The callback configuration is not json format.", string(raw), "")
	}
	str := func(k string) (string, bool) {
		v, ok := doc[k]
		if !ok {
			return "", true
		}
		s, isStr := v.(string)
		return s, isStr
	}
	cbURL, ok1 := str("callbackUrl")
	host, ok2 := str("callbackHost")
	body, ok3 := str("callbackBody")
	bodyType, ok4 := str("callbackBodyType")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, errCallbackArg("The callback configuration fields must be strings.", string(raw), "")
	}
	spec := &callbackSpec{host: host, body: body, bodyType: bodyType}
	if v, ok := doc["callbackSNI"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, errCallbackArg("The callbackSNI of the callback configuration must be true or false.", string(raw), "")
		}
		spec.sni = b
	}
	if cbURL == "" {
		return nil, errCallbackArg("The callbackUrl of the callback configuration is empty.", string(raw), "0007-00000004")
	}
	for _, u := range strings.Split(cbURL, ";") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, errCallbackArg("The callbackUrl of the callback configuration is invalid.", string(raw), "0007-00000004")
		}
		if p := pu.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, errCallbackArg("The callbackUrl port is invalid.", string(raw), "0007-00000004")
			}
		}
		spec.urls = append(spec.urls, u)
	}
	if len(spec.urls) > 5 {
		return nil, errCallbackArg("The callbackUrl has more than 5 URLs.", string(raw), "0007-00000004")
	}
	if body == "" {
		return nil, errCallbackArg("The callbackBody of the callback configuration is empty.", string(raw), "0007-00000011")
	}
	switch bodyType {
	case "":
		spec.bodyType = "application/x-www-form-urlencoded"
	case "application/x-www-form-urlencoded", "application/json":
	default:
		return nil, errCallbackArg("The callbackBodyType is not supported.", string(raw), "")
	}
	if err := checkTemplate(body); err != nil {
		return nil, errCallbackArg("The callbackBody is invalid: "+err.Error(), string(raw), "")
	}
	return spec, nil
}

func checkTemplate(t string) error {
	for {
		i := strings.Index(t, "${")
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return fmt.Errorf("unclosed variable %q", t[i:])
		}
		if j == 2 {
			return fmt.Errorf("empty variable at %q", t[i:])
		}
		t = t[i+j+1:]
	}
}

// parseCallbackVar decodes callback-var: {"x:name": "value", …}.
func parseCallbackVar(b64 string) (map[string]string, *ossError) {
	vars := map[string]string{}
	if b64 == "" {
		return vars, nil
	}
	if len(b64) > 5<<10 {
		return nil, errInvalidArgument("The callback-var is too long (over 5 KB).", "callback-var", "")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errInvalidArgument("The callback-var is not base64 encoded.", "callback-var", b64).ec("0007-00000002")
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, errInvalidArgument("The callback-var is not json format.", "callback-var", string(raw))
	}
	for k, v := range doc {
		s, ok := v.(string)
		if !strings.HasPrefix(k, "x:") || !ok {
			return nil, errInvalidArgument(`The callback-var must be {"x:name":"value",...}.`, "callback-var", string(raw))
		}
		vars[k] = s
	}
	return vars, nil
}

// uploadFacts are what system variables describe.
type uploadFacts struct {
	bucket, key, etag, mimeType, contentMD5, clientIP, requestID, operation string
	size                                                                    int64
	crc64                                                                   uint64
	data                                                                    []byte // for imageInfo; nil after multipart
}

// renderBody substitutes ${…} variables: URL-encoded for form bodies,
// JSON literals for JSON bodies (numbers bare, strings quoted).
func renderBody(spec *callbackSpec, f uploadFacts, vars map[string]string) string {
	height, width, format := "", "", ""
	if f.data != nil {
		if cfg, name, err := image.DecodeConfig(bytes.NewReader(f.data)); err == nil {
			height, width = strconv.Itoa(cfg.Height), strconv.Itoa(cfg.Width)
			format = name
			if name == "jpeg" {
				format = "jpg"
			}
		}
	}
	type val struct {
		s   string
		num bool
	}
	sys := map[string]val{
		"bucket":           {f.bucket, false},
		"object":           {f.key, false},
		"etag":             {strings.Trim(f.etag, `"`), false},
		"size":             {strconv.FormatInt(f.size, 10), true},
		"mimeType":         {f.mimeType, false},
		"imageInfo.height": {height, true},
		"imageInfo.width":  {width, true},
		"imageInfo.format": {format, false},
		"crc64":            {strconv.FormatUint(f.crc64, 10), true},
		"contentMd5":       {f.contentMD5, false},
		"vpcId":            {"", false},
		"clientIp":         {f.clientIP, false},
		"reqId":            {f.requestID, false},
		"operation":        {f.operation, false},
	}
	jsonMode := spec.bodyType == "application/json"
	var b strings.Builder
	t := spec.body
	for {
		i := strings.Index(t, "${")
		if i < 0 {
			b.WriteString(t)
			break
		}
		j := strings.IndexByte(t[i:], '}')
		b.WriteString(t[:i])
		name := t[i+2 : i+j]
		t = t[i+j+1:]
		v, ok := sys[name]
		if !ok {
			v = val{vars[name], false}
		}
		switch {
		case !jsonMode:
			b.WriteString(url.QueryEscape(v.s))
		case v.s == "" && (v.num || name == "vpcId"):
			b.WriteString("null")
		case v.num:
			b.WriteString(v.s)
		default:
			q, _ := json.Marshal(v.s)
			b.WriteString(string(q))
		}
	}
	return b.String()
}
