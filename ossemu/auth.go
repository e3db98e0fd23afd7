package ossemu

import (
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const maxSkew = 15 * time.Minute

// Longest lifetimes of a V4 signed URL (x-oss-expires, seconds): 7 days
// with the account's keys, 12 hours with STS credentials.
const (
	maxPresign    = 604800
	maxSTSPresign = 43200
)

// principal is who signed a request: a permanent key of the account or an
// STS session.
type principal struct {
	accessKeyID string
	secret      string
	session     *session // nil for permanent keys
}

// credential finds the secret of an AccessKeyId and, for STS keys, checks
// the security token the request carried.
func (e *Emulator) credential(akID, token string, tokenSent bool) (*principal, *ossError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if secret, ok := e.keys[akID]; ok {
		return &principal{accessKeyID: akID, secret: secret}, nil
	}
	s := e.sessions[akID]
	if s == nil {
		return nil, newErr(http.StatusForbidden, "InvalidAccessKeyId",
			"The OSS Access Key Id you provided does not exist in our records.").with("OSSAccessKeyId", akID)
	}
	if !tokenSent || token == "" {
		return nil, newErr(http.StatusForbidden, "InvalidAccessKeyId",
			"The OSS Access Key Id you provided does not exist in our records. (an STS AccessKeyId needs its security token)").
			with("OSSAccessKeyId", akID)
	}
	if !hmac.Equal([]byte(token), []byte(s.token)) {
		return nil, newErr(http.StatusForbidden, "InvalidSecurityToken", "The security token you provided is invalid.")
	}
	if !e.now().Before(s.expires) {
		return nil, newErr(http.StatusForbidden, "SecurityTokenExpired", "The security token you provided has expired.")
	}
	return &principal{accessKeyID: akID, secret: s.secret, session: s}, nil
}

// authenticate checks the signature of a request signed in a header or in
// its URL. PostObject is checked separately (post.go).
func (e *Emulator) authenticate(r *http.Request, bucketName, key string, query []queryParam) (*principal, *ossError) {
	auth := r.Header.Get("Authorization")
	v4Query, v1Query := querySignature(query)
	if auth != "" && (v4Query || v1Query) {
		return nil, errInvalidArgument("Authorization header and query signature must not both be present.", "Authorization", auth)
	}
	switch {
	case strings.HasPrefix(auth, v4Algorithm+" "):
		return e.authV4Header(r, bucketName, key, query, strings.TrimPrefix(auth, v4Algorithm+" "))
	case strings.HasPrefix(auth, "OSS "):
		return e.authV1Header(r, bucketName, key, query, strings.TrimPrefix(auth, "OSS "))
	case auth != "":
		return nil, errInvalidArgument("Authorization header is invalid.", "Authorization", auth)
	case v4Query:
		return e.authV4Query(r, bucketName, key, query)
	case v1Query:
		return e.authV1Query(r, bucketName, key, query)
	}
	return nil, errAccessDenied("You have no right to access this object because of bucket acl.")
}

// querySignature reports which URL signature a query carries, even in
// part.
func querySignature(query []queryParam) (v4, v1 bool) {
	_, v4 = firstParam(query, "x-oss-signature")
	_, v1 = firstParam(query, "Signature")
	if !v1 {
		_, v1 = firstParam(query, "OSSAccessKeyId")
	}
	return v4, v1
}

// unsigned reports whether a request is anonymous: no Authorization header
// and no piece of a V1 or V4 URL signature. A request that carries any of
// them is checked as signed and fails as such, never read anonymously.
func unsigned(r *http.Request, query []queryParam) bool {
	if _, ok := r.Header["Authorization"]; ok {
		return false
	}
	v4, v1 := querySignature(query)
	_, credential := firstParam(query, "x-oss-credential")
	_, version := firstParam(query, "x-oss-signature-version")
	return !v4 && !v1 && !credential && !version
}

func (e *Emulator) authV1Header(r *http.Request, bucketName, key string, query []queryParam, cred string) (*principal, *ossError) {
	akID, sig, ok := strings.Cut(cred, ":")
	if !ok || akID == "" || sig == "" {
		return nil, errInvalidArgument("Authorization header is invalid.", "Authorization", "OSS "+cred)
	}
	dateSlot := r.Header.Get("x-oss-date")
	if dateSlot == "" {
		dateSlot = r.Header.Get("Date")
	}
	if dateSlot == "" {
		return nil, errAccessDenied("AccessDenied: Date header is missing.").ec("0002-00000503")
	}
	t, err := http.ParseTime(dateSlot)
	if err != nil {
		return nil, errAccessDenied("The date in the request is invalid: " + dateSlot)
	}
	if d := e.now().Sub(t); d > maxSkew || d < -maxSkew {
		return nil, newErr(http.StatusForbidden, "RequestTimeTooSkewed",
			"The difference between the request time and the current time is too large.").
			with("RequestTime", t.UTC().Format(time.RFC3339)).with("ServerTime", e.now().UTC().Format(time.RFC3339))
	}
	token, sent := headerPresent(r.Header, "x-oss-security-token")
	p, oe := e.credential(akID, token, sent)
	if oe != nil {
		return nil, oe
	}
	sts := v1StringToSign(r.Method, r.Header, dateSlot, bucketName, key, query)
	if !hmac.Equal([]byte(hmacSHA1Base64(p.secret, sts)), []byte(sig)) {
		return nil, errSignature(sts, sig, akID)
	}
	return p, nil
}

func (e *Emulator) authV1Query(r *http.Request, bucketName, key string, query []queryParam) (*principal, *ossError) {
	akID, _ := firstParam(query, "OSSAccessKeyId")
	expires, _ := firstParam(query, "Expires")
	sig, _ := firstParam(query, "Signature")
	if akID == "" || expires == "" || sig == "" {
		return nil, errAccessDenied("OSSAccessKeyId, Expires and Signature are all required in a signed URL.")
	}
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		return nil, errAccessDenied("Expires is not a number: " + expires)
	}
	if now := e.now(); now.Unix() > exp {
		return nil, errAccessDenied("Request has expired.").
			with("Expires", time.Unix(exp, 0).UTC().Format("2006-01-02T15:04:05.000Z")).
			with("ServerTime", now.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	token, sent := firstParam(query, "security-token")
	p, oe := e.credential(akID, token, sent)
	if oe != nil {
		return nil, oe
	}
	sts := v1StringToSign(r.Method, r.Header, expires, bucketName, key, query)
	if !hmac.Equal([]byte(hmacSHA1Base64(p.secret, sts)), []byte(sig)) {
		return nil, errSignature(sts, sig, akID)
	}
	return p, nil
}

// v4Scope is a parsed x-oss-credential.
type v4Scope struct{ akID, date, region, product string }

func (s v4Scope) String() string {
	return s.date + "/" + s.region + "/" + s.product + "/" + v4Terminator
}

func (e *Emulator) parseCredential(c string) (v4Scope, *ossError) {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[4] != v4Terminator {
		return v4Scope{}, errInvalidArgument("Invalid credential in Authorization header: it does not end with aliyun_v4_request.",
			"x-oss-credential", c).ec("0002-00000710")
	}
	s := v4Scope{parts[0], parts[1], parts[2], parts[3]}
	if s.product != "oss" {
		return s, errInvalidArgument("Invalid signing product in Authorization header.", "x-oss-credential", c)
	}
	if s.region != e.region {
		return s, errInvalidArgument("Invalid signing region in Authorization header.", "x-oss-credential", c).ec("0002-00000226")
	}
	return s, nil
}

func (e *Emulator) authV4Header(r *http.Request, bucketName, key string, query []queryParam, rest string) (*principal, *ossError) {
	var credential, signature string
	var additional []string
	for _, f := range strings.Split(rest, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch name {
		case "Credential":
			credential = value
		case "AdditionalHeaders":
			additional = strings.Split(value, ";")
		case "Signature":
			signature = value
		}
	}
	if credential == "" || signature == "" {
		return nil, errInvalidArgument("Authorization header is invalid: Credential and Signature are required.", "Authorization", rest)
	}
	scope, oe := e.parseCredential(credential)
	if oe != nil {
		return nil, oe
	}
	// The time is x-oss-date (ISO 8601 basic); clients that send only Date
	// (aliyun-oss-go-sdk) sign the Date value as it is.
	dateTime := r.Header.Get("x-oss-date")
	t, err := time.Parse(v4DateTimeLayout, dateTime)
	if dateTime == "" {
		dateTime = r.Header.Get("Date")
		t, err = http.ParseTime(dateTime)
	}
	if err != nil {
		return nil, errAccessDenied("x-oss-date header is missing or invalid.").ec("0002-00000503")
	}
	if t.UTC().Format("20060102") != scope.date {
		return nil, errInvalidArgument("Invalid signing date in Authorization header.", "x-oss-credential", credential)
	}
	if d := e.now().Sub(t); d > maxSkew || d < -maxSkew {
		return nil, newErr(http.StatusForbidden, "RequestTimeTooSkewed",
			"The difference between the request time and the current time is too large.")
	}
	if p := r.Header.Get("x-oss-content-sha256"); p != "" && p != unsignedPayload {
		return nil, errInvalidArgument("Set the x-oss-content-sha256 header to UNSIGNED-PAYLOAD.", "x-oss-content-sha256", p).ec("0002-00000214")
	}
	token, sent := headerPresent(r.Header, "x-oss-security-token")
	p, oe := e.credential(scope.akID, token, sent)
	if oe != nil {
		return nil, oe
	}
	if oe := checkV4(r, p, scope, bucketName, key, query, dateTime, signature, additional); oe != nil {
		return nil, oe
	}
	return p, nil
}

func (e *Emulator) authV4Query(r *http.Request, bucketName, key string, query []queryParam) (*principal, *ossError) {
	get := func(n string) string { v, _ := firstParam(query, n); return v }
	if v := get("x-oss-signature-version"); v != v4Algorithm {
		return nil, errInvalidArgument("x-oss-signature-version must be OSS4-HMAC-SHA256.", "x-oss-signature-version", v).ec("0002-00000215")
	}
	credential, dateTime, expires, signature := get("x-oss-credential"), get("x-oss-date"), get("x-oss-expires"), get("x-oss-signature")
	if credential == "" || dateTime == "" || expires == "" || signature == "" {
		return nil, errInvalidArgument("A V4 signed URL needs x-oss-credential, x-oss-date, x-oss-expires and x-oss-signature.",
			"x-oss-signature", signature).ec("0002-00000216")
	}
	scope, oe := e.parseCredential(credential)
	if oe != nil {
		return nil, oe
	}
	t, err := time.Parse(v4DateTimeLayout, dateTime)
	if err != nil || dateTime[:8] != scope.date {
		return nil, errInvalidArgument("x-oss-date is invalid or not on the credential's date.", "x-oss-date", dateTime)
	}
	secs, err := strconv.Atoi(expires)
	if err != nil || secs < 1 || secs > maxPresign {
		return nil, errInvalidArgument("x-oss-expires must be 1 to 604800 seconds.", "x-oss-expires", expires).ec("0002-00000232")
	}
	now := e.now()
	if now.Before(t.Add(-maxSkew)) {
		return nil, newErr(http.StatusForbidden, "RequestTimeTooSkewed",
			"The difference between the request time and the current time is too large.")
	}
	if now.After(t.Add(time.Duration(secs) * time.Second)) {
		return nil, errAccessDenied("Request has expired.").
			with("Expires", t.Add(time.Duration(secs)*time.Second).UTC().Format("2006-01-02T15:04:05.000Z")).
			with("ServerTime", now.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	token, sent := firstParam(query, "x-oss-security-token")
	p, oe := e.credential(scope.akID, token, sent)
	if oe != nil {
		return nil, oe
	}
	// A URL signed with STS credentials lives at most 12 hours.
	if p.session != nil && secs > maxSTSPresign {
		return nil, errInvalidArgument("x-oss-expires must be 1 to 43200 seconds for a URL signed with STS credentials.", "x-oss-expires", expires).ec("0002-00000232")
	}
	var additional []string
	if a := get("x-oss-additional-headers"); a != "" {
		additional = strings.Split(a, ";")
	}
	if oe := checkV4(r, p, scope, bucketName, key, query, dateTime, signature, additional); oe != nil {
		return nil, oe
	}
	return p, nil
}

// checkV4 rebuilds the V4 canonical request of what was received and
// compares signatures.
func checkV4(r *http.Request, p *principal, scope v4Scope, bucketName, key string, query []queryParam,
	dateTime, signature string, additional []string) *ossError {
	creq := v4CanonicalRequest(r.Method, bucketName, key, query, r.Header, r.Host, additional)
	sts := v4StringToSign(dateTime, scope.String(), creq)
	want := hex.EncodeToString(hmacSHA256(v4Key(p.secret, scope.date, scope.region, scope.product), sts))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errSignature(sts, signature, scope.akID).with("CanonicalRequest", creq)
	}
	return nil
}

func headerPresent(h http.Header, name string) (string, bool) {
	v, ok := h[http.CanonicalHeaderKey(name)]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}
