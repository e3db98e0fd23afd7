package caddyoss

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
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

// appendFormFields writes form fields as members of f, in order. The values
// this package made (base64, hex, dates) are written without scanning.
func appendFormFields(f *jsonObject, fields []formField) {
	for _, kv := range fields {
		switch kv.Name {
		case "policy", "Signature", "x-oss-signature", "x-oss-signature-version", "x-oss-date", "callback":
			f.plain(kv.Name, kv.Value)
		default:
			f.str(kv.Name, kv.Value)
		}
	}
}

// buildPostPolicy writes the policy JSON, encodes it and signs the base64
// text exactly as it will be sent (protocol §1.5, §1.6).
func buildPostPolicy(in postPolicyInput, c creds, now time.Time, keys *v4KeyCache) (postPolicy, error) {
	var out postPolicy
	bp := getJSONBuf()
	defer putJSONBuf(bp)
	js := *bp
	n := 0
	cond := func() {
		if n > 0 {
			js = append(js, ',')
		}
		n++
	}
	simple := func(field, value string) { // {"field":"value"}
		cond()
		js = append(js, '{')
		js = appendJSONString(js, field)
		js = append(js, ':')
		js = appendJSONString(js, value)
		js = append(js, '}')
	}
	triple := func(op, field, value string) { // ["op","$field","value"]
		cond()
		js = append(js, '[')
		js = appendJSONString(js, op)
		js = append(js, ',')
		js = appendJSONString(js, field)
		js = append(js, ',')
		js = appendJSONString(js, value)
		js = append(js, ']')
	}
	js = append(js, `{"expiration":`...)
	js = append(js, '"')
	js = in.expiration.UTC().AppendFormat(js, "2006-01-02T15:04:05.000Z")
	js = append(js, '"')
	js = append(js, `,"conditions":[`...)
	simple("bucket", in.bucket)
	var scopeDate string
	if in.version == sigV4 {
		now = now.UTC()
		out.Date = now.Format("20060102T150405Z")
		scopeDate = out.Date[:8]
		out.Cred = c.ID + "/" + scopeDate + "/" + in.region + "/oss/aliyun_v4_request"
		simple("x-oss-signature-version", v4Algorithm)
		simple("x-oss-credential", out.Cred)
		if c.Token != "" {
			simple("x-oss-security-token", c.Token)
		}
		simple("x-oss-date", out.Date)
	} else if c.Token != "" {
		simple("x-oss-security-token", c.Token)
	}
	if in.maxSize > 0 || in.minSize > 0 {
		maxSize := in.maxSize
		if maxSize == 0 {
			maxSize = maxObjectSize
		}
		cond()
		js = append(js, `["content-length-range",`...)
		js = strconv.AppendInt(js, in.minSize, 10)
		js = append(js, ',')
		js = strconv.AppendInt(js, maxSize, 10)
		js = append(js, ']')
	}
	if in.status != "" {
		triple("eq", "$success_action_status", in.status)
	}
	if in.key != "" {
		triple("eq", "$key", in.key)
	} else {
		triple("starts-with", "$key", in.prefix)
	}
	if in.contentType != "" {
		// x-oss-content-type wins over Content-Type in OSS, so both are
		// pinned: an extra x-oss-content-type field cannot change the type.
		triple("eq", "$content-type", in.contentType)
		triple("eq", "$x-oss-content-type", in.contentType)
	}
	if in.acl != "" {
		triple("eq", "$x-oss-object-acl", in.acl)
	}
	if in.storageClass != "" {
		triple("eq", "$x-oss-storage-class", in.storageClass)
	}
	if in.callback != "" {
		triple("eq", "$callback", in.callback)
	}
	varNames := make([]string, 0, len(in.vars))
	for k := range in.vars {
		varNames = append(varNames, k)
	}
	sort.Strings(varNames)
	for _, k := range varNames {
		triple("eq", "$"+k, in.vars[k])
	}
	js = append(js, "]}"...)
	*bp = js
	out.Policy = base64.StdEncoding.EncodeToString(js)

	if in.version == sigV4 {
		out.Signature = keys.sign(c.Secret, scopeDate, in.region, []byte(out.Policy))
	} else {
		out.Signature = signV1(c.Secret, out.Policy)
	}

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
	up, err := h.prepareUpload(w, r)
	if err != nil {
		return err
	}
	in, pp, err := h.signPostObject(r, up, "200")
	if err != nil {
		return err
	}
	bp := getJSONBuf()
	defer putJSONBuf(bp)
	o := jsonObject{b: *bp}
	o.open()
	o.str("method", "POST")
	o.str("url", h.uploadURL)
	o.str("host", h.uploadURL)
	o.str("key", up.key)
	o.str("dir", up.prefix)
	o.plain("policy", pp.Policy)
	o.plain("signature", pp.Signature)
	o.int("expire", in.expiration.Unix())
	o.time("expiration", in.expiration.UTC(), time.RFC3339)
	if h.SignatureVersion == sigV4 {
		o.plain("x_oss_signature_version", v4Algorithm)
		o.str("x_oss_credential", pp.Cred)
		o.plain("x_oss_date", pp.Date)
	} else {
		o.str("ossAccessKeyId", up.creds.ID)
		o.str("accessid", up.creds.ID)
	}
	if up.creds.Token != "" {
		o.str("security_token", up.creds.Token)
	}
	if h.callbackB64 != "" {
		o.plain("callback", h.callbackB64)
	}
	// The form fields in the order to send them, as one object: clients
	// that iterate it append them in this order.
	o.object("fields", func(f *jsonObject) {
		f.str("key", up.key)
		appendFormFields(f, pp.Fields)
	})
	o.close()
	*bp = o.b
	if ce := h.logger.Check(zapcore.DebugLevel, "post policy signed"); ce != nil { // the fields are built only when debug is on
		ce.Write(zapKey(up.key), zapVersion(h.SignatureVersion),
			zapExpires(in.expiration), zapRemote(r))
	}
	return writeJSONBytes(w, http.StatusOK, o.b)
}

// signPostObject signs the PostObject policy of an upload: the exact key
// (or the prefix with client_keys), the limits, the type, ACL, storage
// class and, when configured, the callback and its binding. status is the
// success_action_status to pin.
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
	kind, scope := byte(bindingExactKey), up.key
	if h.ClientKeys {
		in.key = ""
		kind, scope = bindingPrefix, up.prefix
	}
	var err error
	if in.vars, err = h.issueVars(r.Context(), up.custom, kind, scope, in.expiration); err != nil {
		return in, postPolicy{}, h.unavailable(r, "signing the callback binding", err)
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
