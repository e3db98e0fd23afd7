package caddyoss

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// postPolicyInput is everything a PostObject policy is made of.
type postPolicyInput struct {
	version    string // sigV1 or sigV4
	bucket     string
	region     string
	prefix     string // enforced with ["starts-with", "$key", prefix]…
	key        string // …unless the exact key is pinned with ["eq", "$key", key]
	expiration time.Time
	minSize    int64
	maxSize    int64 // 0: no content-length-range unless minSize > 0
	status     string
	// contentType, when set, is pinned with ["eq", "$content-type", …] and
	// sent as the Content-Type field.
	contentType string
	// acl and storageClass, when set, are pinned with eq and sent as the
	// x-oss-object-acl and x-oss-storage-class fields, so an extra field
	// cannot make the object public or change its class.
	acl          string
	storageClass string
	// callback (base64) and vars (x:<name> → value) are pinned with eq.
	callback string
	vars     map[string]string
}

// postPolicy is a signed policy and the form fields that go with it.
type postPolicy struct {
	Policy    string
	Signature string
	Date      string // V4 x-oss-date
	Cred      string // V4 x-oss-credential
	// Fields are the form fields to send before "file", in order.
	Fields []formField
}

type formField struct{ Name, Value string }

// appendFormFields appends form fields as members of a JSON object that
// already has one, in order: `,"name":"value"` each. The names and values
// this package made (base64, hex, dates) are written without scanning.
func appendFormFields(b []byte, fields []formField) []byte {
	for _, kv := range fields {
		switch kv.Name {
		case "policy", "Signature", "x-oss-signature", "x-oss-signature-version", "x-oss-date", "callback":
			b = append(b, `,"`...)
			b = append(b, kv.Name...)
			b = append(b, `":"`...)
			b = append(b, kv.Value...)
			b = append(b, '"')
		default:
			b = append(b, ',')
			b = jsonw.AppendString(b, kv.Name)
			b = append(b, ':')
			b = jsonw.AppendString(b, kv.Value)
		}
	}
	return b
}

// appendFieldsObject appends "fields": the object key first, then the form
// fields in the order to send them, so that clients that iterate it
// append them in this order.
func appendFieldsObject(b []byte, key string, fields []formField) []byte {
	b = append(b, `"fields":{"key":`...)
	b = jsonw.AppendString(b, key)
	b = appendFormFields(b, fields)
	return append(b, '}')
}

// buildPostPolicy writes the policy JSON, encodes it and signs the base64
// text exactly as it will be sent (protocol §1.5, §1.6).
func buildPostPolicy(in postPolicyInput, c creds, now time.Time, keys *v4KeyCache) (postPolicy, error) {
	var out postPolicy
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	js := *bp
	// member appends head (punctuation and names, written as they are),
	// value as a JSON string, and the closing tail.
	member := func(head, value string, tail byte) {
		js = append(js, head...)
		js = jsonw.AppendString(js, value)
		js = append(js, tail)
	}
	js = append(js, `{"expiration":"`...)
	js = appendUTCMillis(js, in.expiration)
	js = append(js, '"')
	member(`,"conditions":[{"bucket":`, in.bucket, '}')
	var scopeDate string
	if in.version == sigV4 {
		var dateBuf [16]byte
		out.Date = string(appendUTCBasic(dateBuf[:0], now))
		scopeDate = out.Date[:8]
		out.Cred = c.ID + "/" + scopeDate + "/" + in.region + "/oss/aliyun_v4_request"
		js = append(js, `,{"x-oss-signature-version":"`+v4Algorithm+`"}`...)
		member(`,{"x-oss-credential":`, out.Cred, '}')
		if c.Token != "" {
			member(`,{"x-oss-security-token":`, c.Token, '}')
		}
		js = append(js, `,{"x-oss-date":"`...)
		js = append(js, out.Date...) // digits and letters
		js = append(js, `"}`...)
	} else if c.Token != "" {
		member(`,{"x-oss-security-token":`, c.Token, '}')
	}
	if in.maxSize > 0 || in.minSize > 0 {
		maxSize := in.maxSize
		if maxSize == 0 {
			maxSize = maxObjectSize
		}
		js = append(js, `,["content-length-range",`...)
		js = strconv.AppendInt(js, in.minSize, 10)
		js = append(js, ',')
		js = strconv.AppendInt(js, maxSize, 10)
		js = append(js, ']')
	}
	if in.status != "" {
		member(`,["eq","$success_action_status",`, in.status, ']')
	}
	if in.key != "" {
		member(`,["eq","$key",`, in.key, ']')
	} else {
		member(`,["starts-with","$key",`, in.prefix, ']')
	}
	if in.contentType != "" {
		// x-oss-content-type wins over Content-Type in OSS, so both are
		// pinned: an extra x-oss-content-type field cannot change the type.
		member(`,["eq","$content-type",`, in.contentType, ']')
		member(`,["eq","$x-oss-content-type",`, in.contentType, ']')
	}
	if in.acl != "" {
		member(`,["eq","$x-oss-object-acl",`, in.acl, ']')
	}
	if in.storageClass != "" {
		member(`,["eq","$x-oss-storage-class",`, in.storageClass, ']')
	}
	if in.callback != "" {
		member(`,["eq","$callback",`, in.callback, ']')
	}
	varNames := make([]string, 0, len(in.vars))
	for k := range in.vars {
		varNames = append(varNames, k)
	}
	sort.Strings(varNames)
	for _, k := range varNames {
		js = append(js, `,["eq",`...)
		js = jsonw.AppendString(js, "$"+k)
		member(",", in.vars[k], ']')
	}
	js = append(js, "]}"...)
	// The policy's base64 goes after its JSON in the same buffer, and the
	// signature after that: one string is made of each.
	b64 := len(js)
	js = base64.StdEncoding.AppendEncode(js, js[:b64])
	sig := len(js)
	if in.version == sigV4 {
		js = keys.appendSign(js, c.Secret, []byte(scopeDate), in.region, js[b64:sig])
	} else {
		sum := len(js)
		js = v1MACs.appendSum(js, c.Secret, js[b64:sig])
		js = base64.StdEncoding.AppendEncode(js, js[sum:])
		js = append(js[:sig], js[sum+sha1.Size:]...)
	}
	*bp = js
	out.Policy = string(js[b64:sig])
	out.Signature = string(js[sig:])

	f := make([]formField, 1, 12+len(varNames))
	f[0] = formField{"policy", out.Policy}
	if in.version == sigV4 {
		f = append(f,
			formField{"x-oss-signature-version", v4Algorithm},
			formField{"x-oss-credential", out.Cred},
			formField{"x-oss-date", out.Date},
			formField{"x-oss-signature", out.Signature})
	} else {
		f = append(f,
			formField{"OSSAccessKeyId", c.ID},
			formField{"Signature", out.Signature})
	}
	if c.Token != "" {
		f = append(f, formField{"x-oss-security-token", c.Token})
	}
	if in.status != "" {
		f = append(f, formField{"success_action_status", in.status})
	}
	if in.contentType != "" {
		f = append(f, formField{"Content-Type", in.contentType},
			formField{"x-oss-content-type", in.contentType})
	}
	if in.acl != "" {
		f = append(f, formField{"x-oss-object-acl", in.acl})
	}
	if in.storageClass != "" {
		f = append(f, formField{"x-oss-storage-class", in.storageClass})
	}
	if in.callback != "" {
		f = append(f, formField{"callback", in.callback})
	}
	for _, k := range varNames {
		f = append(f, formField{k, in.vars[k]})
	}
	out.Fields = f
	return out, nil
}

// servePostPolicy answers GET <policy_path>?filename=&type=&size= with a
// signed PostObject policy and the form fields to send.
func (h *Handler) servePostPolicy(w http.ResponseWriter, r *http.Request) error {
	var up upload
	if err := h.prepareUpload(w, r, &up); err != nil {
		return err
	}
	in, pp, err := h.signPostObject(r, up, "200")
	if err != nil {
		return err
	}
	bp := jsonw.Get()
	defer jsonw.Put(bp)
	// Written member by member, the names as they are: the answer's shape
	// is fixed.
	b := append((*bp)[:0], `{"method":"POST","url":`...)
	b = jsonw.AppendString(b, h.uploadURL)
	b = append(b, `,"host":`...)
	b = jsonw.AppendString(b, h.uploadURL)
	b = append(b, `,"key":`...)
	b = jsonw.AppendString(b, up.key)
	b = append(b, `,"dir":`...)
	b = jsonw.AppendString(b, up.prefix)
	b = append(b, `,"policy":"`...)
	b = append(b, pp.Policy...)
	b = append(b, `","signature":"`...)
	b = append(b, pp.Signature...)
	b = append(b, `","expire":`...)
	b = strconv.AppendInt(b, in.expiration.Unix(), 10)
	b = append(b, `,"expiration":"`...)
	b = appendUTCRFC3339(b, in.expiration)
	b = append(b, '"')
	if h.SignatureVersion == sigV4 {
		b = append(b, `,"x_oss_signature_version":"`+v4Algorithm+`","x_oss_credential":`...)
		b = jsonw.AppendString(b, pp.Cred)
		b = append(b, `,"x_oss_date":"`...)
		b = append(b, pp.Date...)
		b = append(b, '"')
	} else {
		b = append(b, `,"ossAccessKeyId":`...)
		b = jsonw.AppendString(b, up.creds.ID)
		b = append(b, `,"accessid":`...)
		b = jsonw.AppendString(b, up.creds.ID)
	}
	if up.creds.Token != "" {
		b = append(b, `,"security_token":`...)
		b = jsonw.AppendString(b, up.creds.Token)
	}
	if in.callback != "" {
		b = append(b, `,"callback":"`...)
		b = append(b, in.callback...)
		b = append(b, '"')
	}
	b = append(b, ',')
	b = appendFieldsObject(b, up.key, pp.Fields)
	b = append(b, '}')
	*bp = b
	if ce := h.logger.Check(zapcore.DebugLevel, "post policy signed"); ce != nil {
		h.logSigned(ce, r, up.key, in.expiration)
	}
	return writeJSON(w, http.StatusOK, b)
}

// signPostObject signs the PostObject policy of an upload: the exact key
// (or the prefix with client_keys), the limits, the type, ACL, storage
// class and, when configured, the callback and its binding. status is the
// success_action_status to pin. With form_fields minimal, the type, ACL
// and storage class are not pinned, and the callback variables are
// written into the callback parameter instead of x:<name> fields.
func (h *Handler) signPostObject(r *http.Request, up upload, status string) (postPolicyInput, postPolicy, error) {
	now := h.now()
	in := postPolicyInput{
		version:      h.SignatureVersion,
		bucket:       h.Bucket,
		region:       h.Region,
		prefix:       up.prefix,
		key:          up.key,
		expiration:   now.Add(time.Duration(h.Expires)),
		minSize:      h.MinSize,
		maxSize:      h.MaxSize,
		status:       status,
		contentType:  up.hints.contentType,
		acl:          defaultObjectACL,
		storageClass: h.StorageClass,
		callback:     h.callbackB64,
	}
	kind, scope := callback.ExactKey, up.key
	if h.ClientKeys {
		in.key = ""
		kind, scope = callback.Prefix, up.prefix
	}
	var err error
	if in.vars, err = h.issueVars(r.Context(), up.custom, kind, scope, in.expiration); err != nil {
		return in, postPolicy{}, h.unavailable(r, "signing the callback binding", err)
	}
	if h.FormFields == formFieldsMinimal {
		in.contentType, in.acl, in.storageClass = "", "", ""
		if len(in.vars) > 0 {
			if in.callback, err = inlineCallbackVars(in.callback, h.Callback.BodyType == bodyTypeJSON, in.vars); err != nil {
				return in, postPolicy{}, h.internalError(r, "writing the callback variables", err)
			}
			in.vars = nil
		}
	}
	pp, err := buildPostPolicy(in, up.creds, now, h.v4Keys)
	if err != nil {
		return in, postPolicy{}, h.internalError(r, "building the policy", err)
	}
	return in, pp, nil
}

// defaultStorageClass is the class PostObject policies pin by default.
const defaultStorageClass = "Standard"

// defaultObjectACL is pinned in PostObject policies: the object takes the
// bucket's ACL, and an extra x-oss-object-acl field cannot make it public.
const defaultObjectACL = "default"

// canonicalStorageClass spells a storage class as OSS does.
func canonicalStorageClass(s string) (string, bool) {
	for _, c := range []string{"Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"} {
		if strings.EqualFold(s, c) {
			return c, true
		}
	}
	return "", false
}

// inlineCallbackVars returns the base64 callback parameter param with
// each ${x:<name>} of its body replaced by the variable's value (vars are
// keyed x:<name>), for forms that send no x:<name> fields: OSS then sends
// the body with the values already in it, which the callback route reads
// as it reads substituted ones. Values are URL-encoded in a form body and
// JSON strings in a JSON body, so a value cannot add or change a field.
func inlineCallbackVars(param string, isJSON bool, vars map[string]string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(param)
	if err != nil {
		return "", err
	}
	text := string(raw)
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ref := "${" + k + "}"
		if strings.Count(text, ref) != 1 {
			return "", fmt.Errorf("the callback body uses %s %d times, not once", ref, strings.Count(text, ref))
		}
		var value string
		if isJSON {
			v, err := json.Marshal(vars[k])
			if err != nil {
				return "", err
			}
			value = string(v)
		} else {
			value = url.QueryEscape(vars[k])
		}
		// The body is a string in the parameter's JSON.
		quoted, err := json.Marshal(value)
		if err != nil {
			return "", err
		}
		text = strings.Replace(text, ref, string(quoted[1:len(quoted)-1]), 1)
	}
	return base64.StdEncoding.EncodeToString([]byte(text)), nil
}
