package osssign

import (
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strconv"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// MaxObjectSize is the largest object PostObject and PutObject accept
// (5 GiB).
const MaxObjectSize = 5 << 30

// Policy is everything a PostObject policy is made of.
type Policy struct {
	Version    string // V1 or V4
	Bucket     string
	Region     string
	Prefix     string // enforced with ["starts-with", "$key", prefix]…
	Key        string // …unless the exact key is pinned with ["eq", "$key", key]
	Expiration time.Time
	MinSize    int64
	MaxSize    int64 // 0: no content-length-range unless MinSize > 0
	// Status, when set, is pinned as success_action_status.
	Status string
	// ContentType, when set, is pinned with ["eq", "$content-type", …] and
	// sent as the Content-Type field.
	ContentType string
	// ACL and StorageClass, when set, are pinned with eq and sent as the
	// x-oss-object-acl and x-oss-storage-class fields, so an extra field
	// cannot make the object public or change its class.
	ACL          string
	StorageClass string
	// Callback (base64) and Vars (x:<name> → value) are pinned with eq.
	Callback string
	Vars     map[string]string
}

// Form is a signed policy and the form fields that go with it.
type Form struct {
	Policy    string
	Signature string
	Date      string // V4 x-oss-date
	Cred      string // V4 x-oss-credential
	// Fields are the form fields to send before "file", in order.
	Fields []Field
}

// Field is one PostObject form field.
type Field struct{ Name, Value string }

// SignPolicy writes the policy JSON, encodes it and signs the base64 text
// exactly as it will be sent (protocol §1.5, §1.6), as of now.
func (s *Signer) SignPolicy(in Policy, c Credentials, now time.Time) (Form, error) {
	var out Form
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
	js = AppendUTCMillis(js, in.Expiration)
	js = append(js, '"')
	member(`,"conditions":[{"bucket":`, in.Bucket, '}')
	var scopeDate string
	if in.Version == V4 {
		var dateBuf [16]byte
		out.Date = string(AppendUTCBasic(dateBuf[:0], now))
		scopeDate = out.Date[:8]
		out.Cred = c.ID + "/" + scopeDate + "/" + in.Region + "/oss/aliyun_v4_request"
		js = append(js, `,{"x-oss-signature-version":"`+V4Algorithm+`"}`...)
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
	if in.MaxSize > 0 || in.MinSize > 0 {
		maxSize := in.MaxSize
		if maxSize == 0 {
			maxSize = MaxObjectSize
		}
		js = append(js, `,["content-length-range",`...)
		js = strconv.AppendInt(js, in.MinSize, 10)
		js = append(js, ',')
		js = strconv.AppendInt(js, maxSize, 10)
		js = append(js, ']')
	}
	if in.Status != "" {
		member(`,["eq","$success_action_status",`, in.Status, ']')
	}
	if in.Key != "" {
		member(`,["eq","$key",`, in.Key, ']')
	} else {
		member(`,["starts-with","$key",`, in.Prefix, ']')
	}
	if in.ContentType != "" {
		// x-oss-content-type wins over Content-Type in OSS, so both are
		// pinned: an extra x-oss-content-type field cannot change the type.
		member(`,["eq","$content-type",`, in.ContentType, ']')
		member(`,["eq","$x-oss-content-type",`, in.ContentType, ']')
	}
	if in.ACL != "" {
		member(`,["eq","$x-oss-object-acl",`, in.ACL, ']')
	}
	if in.StorageClass != "" {
		member(`,["eq","$x-oss-storage-class",`, in.StorageClass, ']')
	}
	if in.Callback != "" {
		member(`,["eq","$callback",`, in.Callback, ']')
	}
	varNames := make([]string, 0, len(in.Vars))
	for k := range in.Vars {
		varNames = append(varNames, k)
	}
	sort.Strings(varNames)
	for _, k := range varNames {
		js = append(js, `,["eq",`...)
		js = jsonw.AppendString(js, "$"+k)
		member(",", in.Vars[k], ']')
	}
	js = append(js, "]}"...)
	// The policy's base64 goes after its JSON in the same buffer, and the
	// signature after that: one string is made of each.
	b64 := len(js)
	js = base64.StdEncoding.AppendEncode(js, js[:b64])
	sig := len(js)
	if in.Version == V4 {
		js = s.v4.appendSign(js, c.Secret, []byte(scopeDate), in.Region, js[b64:sig])
	} else {
		sum := len(js)
		js = s.v1.appendSum(js, c.Secret, js[b64:sig])
		js = base64.StdEncoding.AppendEncode(js, js[sum:])
		js = append(js[:sig], js[sum+sha1.Size:]...)
	}
	*bp = js
	out.Policy = string(js[b64:sig])
	out.Signature = string(js[sig:])

	f := make([]Field, 1, 12+len(varNames))
	f[0] = Field{"policy", out.Policy}
	if in.Version == V4 {
		f = append(f,
			Field{"x-oss-signature-version", V4Algorithm},
			Field{"x-oss-credential", out.Cred},
			Field{"x-oss-date", out.Date},
			Field{"x-oss-signature", out.Signature})
	} else {
		f = append(f,
			Field{"OSSAccessKeyId", c.ID},
			Field{"Signature", out.Signature})
	}
	if c.Token != "" {
		f = append(f, Field{"x-oss-security-token", c.Token})
	}
	if in.Status != "" {
		f = append(f, Field{"success_action_status", in.Status})
	}
	if in.ContentType != "" {
		f = append(f, Field{"Content-Type", in.ContentType},
			Field{"x-oss-content-type", in.ContentType})
	}
	if in.ACL != "" {
		f = append(f, Field{"x-oss-object-acl", in.ACL})
	}
	if in.StorageClass != "" {
		f = append(f, Field{"x-oss-storage-class", in.StorageClass})
	}
	if in.Callback != "" {
		f = append(f, Field{"callback", in.Callback})
	}
	for _, k := range varNames {
		f = append(f, Field{k, in.Vars[k]})
	}
	out.Fields = f
	return out, nil
}
