package caddyoss

import (
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
	"github.com/caddy-oss/caddy-oss/internal/osssign"
)

// appendFormFields appends form fields as members of a JSON object that
// already has one, in order: `,"name":"value"` each. The names and values
// this package made (base64, hex, dates) are written without scanning.
func appendFormFields(b []byte, fields []osssign.Field) []byte {
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
func appendFieldsObject(b []byte, key string, fields []osssign.Field) []byte {
	b = append(b, `"fields":{"key":`...)
	b = jsonw.AppendString(b, key)
	b = appendFormFields(b, fields)
	return append(b, '}')
}

// servePostPolicy answers GET <policy_path>?filename=&type=&size= with a
// signed PostObject policy and the form fields to send.
func (h *Handler) servePostPolicy(w http.ResponseWriter, r *http.Request) error {
	up := upload{route: signRoutePostPolicy}
	if err := h.prepareUpload(w, r, &up); err != nil {
		return err
	}
	in, pp, token, err := h.signPostObject(w, r, up, "200")
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
	b = strconv.AppendInt(b, in.Expiration.Unix(), 10)
	b = append(b, `,"expiration":"`...)
	b = osssign.AppendUTCRFC3339(b, in.Expiration)
	b = append(b, '"')
	if h.SignatureVersion == osssign.V4 {
		b = append(b, `,"x_oss_signature_version":"`+osssign.V4Algorithm+`","x_oss_credential":`...)
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
	if in.Callback != "" {
		b = append(b, `,"callback":"`...)
		b = append(b, in.Callback...)
		b = append(b, '"')
	}
	b = append(b, ',')
	b = appendFieldsObject(b, up.key, pp.Fields)
	b = h.appendConfirmMember(b, token)
	b = append(b, '}')
	*bp = b
	if ce := h.logger.Check(zapcore.DebugLevel, "post policy signed"); ce != nil {
		h.logSigned(ce, r, up.key, in.Expiration)
	}
	return writeJSON(w, http.StatusOK, b)
}

// signPostObject signs the PostObject policy of an upload: the exact key
// (or the prefix with client_keys), the limits, the type, ACL, storage
// class and, when configured, the callback and its binding. status is the
// success_action_status to pin. With form_fields minimal, the type, ACL
// and storage class are not pinned, and the callback variables are
// written into the callback parameter instead of x:<name> fields. It also
// returns the upload's confirm token ("" when the confirm route is off).
// With a quota, the upload is reserved first (reservePostObject).
func (h *Handler) signPostObject(w http.ResponseWriter, r *http.Request, up upload, status string) (osssign.Policy, osssign.Form, string, error) {
	now := h.now()
	in := osssign.Policy{
		Version:      h.SignatureVersion,
		Bucket:       h.Bucket,
		Region:       h.Region,
		Prefix:       up.prefix,
		Key:          up.key,
		Expiration:   now.Add(time.Duration(h.Expires)),
		MinSize:      h.MinSize,
		MaxSize:      h.MaxSize,
		Status:       status,
		ContentType:  up.hints.contentType,
		ACL:          defaultObjectACL,
		StorageClass: h.StorageClass,
		Callback:     h.callbackB64,
	}
	kind, scope := callback.ExactKey, up.key
	if h.ClientKeys {
		in.Key = ""
		kind, scope = callback.Prefix, up.prefix
	}
	if err := h.reservePostObject(w, r, &up, &in); err != nil {
		return in, osssign.Form{}, "", err
	}
	vars, err := h.issueVars(r.Context(), up.custom, kind, scope, in.Expiration)
	if err != nil {
		return in, osssign.Form{}, "", h.unavailable(r, "signing the callback binding", err)
	}
	if in.Callback != "" {
		in.Vars = vars
	}
	if h.FormFields == formFieldsMinimal {
		in.ContentType, in.ACL, in.StorageClass = "", "", ""
		if len(in.Vars) > 0 {
			if in.Callback, err = inlineCallbackVars(in.Callback, h.Callback.BodyType == bodyTypeJSON, in.Vars); err != nil {
				return in, osssign.Form{}, "", h.internalError(r, "writing the callback variables", err)
			}
			in.Vars = nil
		}
	}
	pp, err := h.signer.SignPolicy(in, up.creds, now)
	if err != nil {
		return in, osssign.Form{}, "", h.internalError(r, "building the policy", err)
	}
	return in, pp, h.confirmToken(vars), nil
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
