package ossemu

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"
)

const (
	maxObjectSize   = 5 << 30
	maxFieldNames   = 8 << 10
	maxFieldValues  = 2 << 20
	fileFieldName   = "file"
	v4PostMaxWindow = 7 * 24 * time.Hour
)

// postForm is a PostObject body read up to and including the file part;
// fields after the file are not seen, as on OSS.
type postForm struct {
	fields   map[string]string // lower-case names
	header   http.Header       // the same fields, for metadata
	filename string
	fileType string
	data     []byte
	sawFile  bool
}

func errMalformedPost() *ossError {
	return newErr(http.StatusBadRequest, "MalformedPOSTRequest",
		"The body of your POST request is not well-formed multipart/form-data.")
}

func readPostForm(r *http.Request, boundary string) (*postForm, *ossError) {
	f := &postForm{fields: map[string]string{}, header: http.Header{}}
	mr := multipart.NewReader(r.Body, boundary)
	names, values := 0, 0
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return nil, errMalformedPost()
		}
		name := p.FormName()
		if name == "" {
			return nil, errMalformedPost()
		}
		if strings.EqualFold(name, fileFieldName) {
			data, err := io.ReadAll(io.LimitReader(p, maxObjectSize+1))
			if err != nil {
				return nil, errMalformedPost()
			}
			if len(data) > maxObjectSize {
				return nil, newErr(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
			}
			f.data, f.sawFile = data, true
			f.filename = p.FileName()
			f.fileType = p.Header.Get("Content-Type")
			return f, nil // fields after file are not read
		}
		v, err := io.ReadAll(io.LimitReader(p, maxFieldValues+1))
		if err != nil {
			return nil, errMalformedPost()
		}
		names += len(name)
		values += len(v)
		if names > maxFieldNames || values > maxFieldValues {
			return nil, newErr(http.StatusBadRequest, "FieldItemTooLong", "Your POST request fields preceding the upload file was too large.")
		}
		ln := strings.ToLower(name)
		if _, dup := f.fields[ln]; !dup {
			f.fields[ln] = string(v)
			f.header.Set(name, string(v))
		}
	}
}

// servePostObject handles a form upload to a bucket.
func (e *Emulator) servePostObject(w http.ResponseWriter, r *http.Request, c *reqCtx) *ossError {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return newErr(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.").
			with("Method", "POST").with("ResourceType", "Bucket")
	}
	body, oe := readLimitedBody(r, maxObjectSize+(4<<20))
	if oe != nil {
		return oe
	}
	if md := r.Header.Get("Content-MD5"); md != "" {
		sum := md5.Sum(body)
		if md != base64.StdEncoding.EncodeToString(sum[:]) {
			return newErr(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, oe := readPostForm(r, params["boundary"])
	if oe != nil {
		return oe
	}
	key, hasKey := form.fields["key"]
	if !hasKey || key == "" {
		return errInvalidArgument("The bucket POST must contain the specified 'key'. If it is specified, please check the order of the fields",
			"key", "")
	}
	if !form.sawFile {
		return newErr(http.StatusBadRequest, "IncorrectNumberOfFilesInPOSTRequest", "POST requires exactly one file upload per request.")
	}
	p, oe := e.checkPostAuth(form.fields)
	if oe != nil {
		return oe
	}
	if oe := p.policy.check(form.fields, c.bucket.name, int64(len(form.data))); oe != nil {
		return oe
	}
	if strings.Contains(key, "${filename}") {
		name := form.filename
		if i := strings.LastIndexAny(name, `/\`); i >= 0 {
			name = name[i+1:]
		}
		key = strings.ReplaceAll(key, "${filename}", name)
	}
	if oe := checkObjectName(key); oe != nil {
		return oe
	}
	if oe := e.authorize(p.principal, "PostObject", c.bucket.name, key); oe != nil {
		return oe
	}

	spec, oe := parseCallback(form.fields["callback"])
	if oe != nil {
		return oe
	}
	vars := map[string]string{}
	for k, v := range form.fields {
		if strings.HasPrefix(k, "x:") {
			vars[k] = v
		}
	}
	contentType := form.fields["x-oss-content-type"]
	if contentType == "" {
		contentType = form.fields["content-type"]
	}
	if contentType == "" {
		contentType = form.fileType
	}
	// The ACL may also come as a request header; the form field wins.
	aclValue, aclGiven := form.fields["x-oss-object-acl"]
	if !aclGiven {
		aclValue, aclGiven = headerPresent(r.Header, "x-oss-object-acl")
	}
	acl, oe := objectACL(aclValue, aclGiven)
	if oe != nil {
		return oe
	}
	if publicRead(acl) && e.BlockPublicAccess(c.bucket.name) {
		return errPublicACLBlocked()
	}
	classValue, classGiven := form.fields["x-oss-storage-class"]
	class, oe := storageClass(classValue, classGiven)
	if oe != nil {
		return oe
	}
	if strings.EqualFold(form.fields["x-oss-forbid-overwrite"], "true") && e.exists(c.bucket.name, key) {
		return errFileAlreadyExists()
	}
	obj := e.store(c.bucket.name, key, form.data,
		objectAttrs{contentType: contentType, meta: metaHeaders(form.header), acl: acl, storageClass: class})
	setWriteHeaders(w, obj)

	if spec != nil {
		facts := factsFor(obj, r, c.requestID, "PostObject")
		facts.data = form.data
		e.finishWithCallback(w, r, c.requestID, c.hostID, spec, renderBody(spec, facts, vars), c.bucket.name)
		return nil
	}
	switch form.fields["success_action_status"] {
	case "200":
		w.WriteHeader(http.StatusOK)
	case "201":
		loc := c.location(r, key)
		out, _ := xml.Marshal(struct {
			XMLName  xml.Name `xml:"PostResponse"`
			Bucket   string
			Location string
			Key      string
			ETag     string
		}{Bucket: c.bucket.name, Location: loc, Key: key, ETag: obj.ETag})
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(out)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// postAuth is a checked PostObject signature and its policy.
type postAuth struct {
	principal *principal
	policy    *postPolicy
}

// checkPostAuth finds the signature version of a form, checks the policy's
// expiry and the signature, and returns who signed it.
func (e *Emulator) checkPostAuth(f map[string]string) (*postAuth, *ossError) {
	if f["x-oss-signature-version"] == v4Algorithm {
		return e.checkPostV4(f)
	}
	_, hasAK := f["ossaccesskeyid"]
	_, hasPolicy := f["policy"]
	_, hasSig := f["signature"]
	if !hasAK && !hasPolicy && !hasSig {
		return nil, errAccessDenied("You have no right to access this object because of bucket acl.")
	}
	for _, n := range []struct {
		has  bool
		name string
	}{{hasAK, "OSSAccessKeyId"}, {hasSig, "Signature"}, {hasPolicy, "policy"}} {
		if !n.has {
			oe := errInvalidArgument("The bucket POST must contain the specified '"+n.name+"'. If it is specified, please check the order of the fields",
				n.name, "")
			if n.name == "OSSAccessKeyId" {
				oe.ec("0002-00000706")
			}
			return nil, oe
		}
	}
	pol, oe := e.parseAndCheckExpiry(f["policy"])
	if oe != nil {
		return nil, oe
	}
	token, sent := f["x-oss-security-token"]
	p, oe := e.credential(f["ossaccesskeyid"], token, sent)
	if oe != nil {
		return nil, oe
	}
	if !hmac.Equal([]byte(hmacSHA1Base64(p.secret, f["policy"])), []byte(f["signature"])) {
		return nil, errSignature("", f["signature"], f["ossaccesskeyid"])
	}
	return &postAuth{principal: p, policy: pol}, nil
}

func (e *Emulator) parseAndCheckExpiry(b64 string) (*postPolicy, *ossError) {
	pol, oe := parsePostPolicy(b64)
	if oe != nil {
		return nil, oe
	}
	if !e.now().Before(pol.expiration) {
		return nil, errAccessDenied("Invalid according to Policy: Policy expired.").ec("0006-00000213")
	}
	return pol, nil
}

func (e *Emulator) checkPostV4(f map[string]string) (*postAuth, *ossError) {
	for _, n := range []string{"x-oss-credential", "x-oss-date", "x-oss-signature", "policy"} {
		if f[n] == "" {
			return nil, errInvalidArgument("The bucket POST must contain the specified '"+n+"'. If it is specified, please check the order of the fields", n, "")
		}
	}
	scope, oe := e.parseCredential(f["x-oss-credential"])
	if oe != nil {
		return nil, oe
	}
	dateTime := f["x-oss-date"]
	t, err := time.Parse(v4DateTimeLayout, dateTime)
	if err != nil || dateTime[:8] != scope.date {
		return nil, errInvalidArgument("x-oss-date is invalid or not on the credential's date.", "x-oss-date", dateTime)
	}
	now := e.now()
	if now.Before(t.Add(-maxSkew)) || now.After(t.Add(v4PostMaxWindow)) {
		return nil, errAccessDenied("Invalid according to Policy: the request time is outside the x-oss-date window.")
	}
	pol, oe := e.parseAndCheckExpiry(f["policy"])
	if oe != nil {
		return nil, oe
	}
	for _, required := range []string{"x-oss-signature-version", "x-oss-credential", "x-oss-date"} {
		if !pol.constrains(required) {
			return nil, errPolicyDoc("a V4 policy must contain the " + required + " condition.")
		}
	}
	token, sent := f["x-oss-security-token"]
	p, oe := e.credential(scope.akID, token, sent)
	if oe != nil {
		return nil, oe
	}
	want := hex.EncodeToString(hmacSHA256(v4Key(p.secret, scope.date, scope.region, scope.product), f["policy"]))
	if !hmac.Equal([]byte(want), []byte(f["x-oss-signature"])) {
		return nil, errSignature("", f["x-oss-signature"], scope.akID)
	}
	return &postAuth{principal: p, policy: pol}, nil
}

func readLimitedBody(r *http.Request, limit int64) ([]byte, *ossError) {
	if r.ContentLength > limit {
		return nil, newErr(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, newErr(http.StatusBadRequest, "IncompleteBody", "The request body could not be read completely.")
	}
	if int64(len(body)) > limit {
		return nil, newErr(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
	}
	return body, nil
}
