package ossemu

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// STSMode switches the STS endpoint into a failure mode for fault tests.
type STSMode int

const (
	// STSNormal answers AssumeRole.
	STSNormal STSMode = iota
	// STSDown answers every call with 500 InternalError.
	STSDown
	// STSSlow delays every answer by the delay given to SetSTSMode.
	STSSlow
	// STSThrottled answers every call with Throttling.User.
	STSThrottled
)

type role struct {
	arn         string
	account     string
	maxDuration time.Duration
	policy      *ramPolicy
}

// session is what one AssumeRole issued.
type session struct {
	role    *role
	name    string
	secret  string
	token   string
	expires time.Time
	policy  *ramPolicy
}

var (
	roleARNPattern     = regexp.MustCompile(`^acs:ram::(\d+):role/[A-Za-z0-9.\-_]+$`)
	sessionNamePattern = regexp.MustCompile(`^[A-Za-z0-9.@_\-]{2,64}$`)
)

func parseRoleARN(arn string) (account string, ok bool) {
	m := roleARNPattern.FindStringSubmatch(arn)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// SetSTSMode switches STS failure modes; delay is used by STSSlow.
func (e *Emulator) SetSTSMode(mode STSMode, delay time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stsMode, e.stsDelay = mode, delay
}

// STSCalls is the number of STS requests received so far, whatever their
// outcome.
func (e *Emulator) STSCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stsCalls
}

type stsError struct {
	status        int
	code, message string
}

// isSTSRequest tells an STS RPC call from an OSS request: RPC calls carry
// Action, which no OSS request does.
func isSTSRequest(r *http.Request, bucketName string) bool {
	if bucketName != "" || r.URL.Path != "/" {
		return false
	}
	if r.URL.Query().Get("Action") != "" {
		return true
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && ct == "application/x-www-form-urlencoded"
}

func (e *Emulator) serveSTS(w http.ResponseWriter, r *http.Request, requestID string) {
	e.mu.Lock()
	e.stsCalls++
	mode, delay := e.stsMode, e.stsDelay
	e.mu.Unlock()

	if mode == STSSlow && delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	var resp any
	var se *stsError
	switch mode {
	case STSDown:
		se = &stsError{http.StatusInternalServerError, "InternalError", "STS Server Internal Error happened."}
	case STSThrottled:
		se = &stsError{http.StatusBadRequest, "Throttling.User", "Request was denied due to user flow control."}
	default:
		resp, se = e.assumeRole(r, requestID)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	if se != nil {
		e.logf("ossemu: STS %s: %s", se.code, se.message)
		w.WriteHeader(se.status)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"RequestId": requestID, "HostId": r.Host, "Code": se.code, "Message": se.message,
			"Recommend": "https://api.aliyun.com/troubleshoot?q=" + se.code,
		})
		return
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (e *Emulator) assumeRole(r *http.Request, requestID string) (any, *stsError) {
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	if r.Body != nil {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" {
			body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			if err != nil {
				return nil, &stsError{http.StatusBadRequest, "InvalidParameter", "The request body could not be read."}
			}
			form, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, &stsError{http.StatusBadRequest, "InvalidParameter", "The request body is not a valid form."}
			}
			for k, v := range form {
				params[k] = v[0]
			}
		}
	}
	for _, name := range []string{"AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp", "Version", "Action"} {
		if params[name] == "" {
			return nil, &stsError{http.StatusBadRequest, "MissingParameter", "The input parameter \"" + name + "\" that is mandatory for processing this request is not supplied."}
		}
	}
	if params["SignatureMethod"] != "HMAC-SHA1" || params["SignatureVersion"] != "1.0" {
		return nil, &stsError{http.StatusBadRequest, "InvalidParameter", "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0."}
	}
	// yyyy-MM-ddTHH:mm:ssZ; fractional seconds are accepted too (ali-oss
	// sends Date.toISOString()).
	ts, err := time.Parse(time.RFC3339Nano, params["Timestamp"])
	if err != nil || !strings.HasSuffix(params["Timestamp"], "Z") {
		return nil, &stsError{http.StatusBadRequest, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	now := e.now()
	if d := now.Sub(ts); d > maxSkew || d < -maxSkew {
		return nil, &stsError{http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}

	secret, caller, se := e.stsCaller(params, now)
	if se != nil {
		return nil, se
	}
	if !hmac.Equal([]byte(rpcSignature(secret, rpcStringToSign(r.Method, params))), []byte(params["Signature"])) {
		return nil, &stsError{http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."}
	}

	e.mu.Lock()
	for n, t := range e.nonces {
		if now.Sub(t) > 2*maxSkew {
			delete(e.nonces, n)
		}
	}
	_, used := e.nonces[params["SignatureNonce"]]
	e.nonces[params["SignatureNonce"]] = now
	e.mu.Unlock()
	if used {
		return nil, &stsError{http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}

	if params["Action"] != "AssumeRole" || params["Version"] != "2015-04-01" {
		return nil, &stsError{http.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}
	}
	if _, ok := parseRoleARN(params["RoleArn"]); !ok {
		return nil, &stsError{http.StatusBadRequest, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed."}
	}
	name := params["RoleSessionName"]
	if !sessionNamePattern.MatchString(name) {
		return nil, &stsError{http.StatusBadRequest, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed."}
	}
	e.mu.Lock()
	rl := e.roles[strings.ToLower(params["RoleArn"])]
	e.mu.Unlock()
	if rl == nil {
		return nil, &stsError{http.StatusNotFound, "EntityNotExist.Role", "The specified Role not exists."}
	}
	if caller == nil && !e.keyAllows(params["AccessKeyId"], "sts:AssumeRole") || caller != nil && !caller.mayAssume(rl.arn) {
		return nil, &stsError{http.StatusForbidden, "NoPermission", "You are not authorized to do this action. You should be authorized by RAM."}
	}
	duration := time.Hour
	if d := params["DurationSeconds"]; d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || time.Duration(n)*time.Second > rl.maxDuration {
			return nil, &stsError{http.StatusBadRequest, "InvalidParameter.DurationSeconds",
				"The Min/Max value of DurationSeconds is 15min/" + rl.maxDuration.String() + "."}
		}
		duration = time.Duration(n) * time.Second
	} else if duration > rl.maxDuration {
		duration = rl.maxDuration
	}
	var policy *ramPolicy
	if doc, ok := params["Policy"]; ok {
		if len(doc) > 2048 {
			return nil, &stsError{http.StatusBadRequest, "InvalidParameter.PolicySize", "The size of Policy must be smaller than 2048 bytes."}
		}
		p, err := parseRAMPolicy(doc)
		if err != nil {
			return nil, &stsError{http.StatusBadRequest, "InvalidParameter.PolicyGrammar",
				"The parameter Policy has not passed grammar check: " + err.Error()}
		}
		policy = p
	}

	akID := "STS." + randomString(24, alnum)
	s := &session{
		role: rl, name: name, policy: policy,
		secret:  randomString(40, alnum),
		token:   "CAIS" + base64.StdEncoding.EncodeToString([]byte(randomString(300, alnum))),
		expires: now.Add(duration).UTC().Truncate(time.Second),
	}
	e.mu.Lock()
	for id, old := range e.sessions {
		if now.After(old.expires.Add(time.Hour)) {
			delete(e.sessions, id)
		}
	}
	e.sessions[akID] = s
	e.mu.Unlock()
	e.logf("ossemu: STS AssumeRole %s as %s until %s", rl.arn, name, s.expires.Format(time.RFC3339))

	return map[string]any{
		"RequestId": requestID,
		"AssumedRoleUser": map[string]string{
			"Arn":           rl.arn + "/" + name,
			"AssumedRoleId": randomString(17, "0123456789") + ":" + name,
		},
		"Credentials": map[string]string{
			"AccessKeyId":     akID,
			"AccessKeySecret": s.secret,
			"SecurityToken":   s.token,
			"Expiration":      s.expires.Format("2006-01-02T15:04:05Z"),
		},
	}, nil
}

// stsCaller finds who signs an STS call: a permanent key of the account,
// or the credentials of an earlier session (a server on an ECS RAM role or
// an OIDC role calls AssumeRole with its own STS AccessKeyId and
// SecurityToken). It returns the secret that signs the call and, for a
// session, the session.
func (e *Emulator) stsCaller(params map[string]string, now time.Time) (string, *session, *stsError) {
	akID := params["AccessKeyId"]
	token := params["SecurityToken"] // an empty one counts as none
	sentToken := token != ""
	e.mu.Lock()
	secret, permanent := e.keys[akID]
	s := e.sessions[akID]
	e.mu.Unlock()
	switch {
	case permanent && !sentToken:
		return secret, nil, nil
	case permanent:
		return "", nil, &stsError{http.StatusBadRequest, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey."}
	case s == nil:
		return "", nil, &stsError{http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found."}
	case !sentToken:
		return "", nil, &stsError{http.StatusBadRequest, "MissingSecurityToken", "SecurityToken is mandatory for this action."}
	case !hmac.Equal([]byte(token), []byte(s.token)):
		return "", nil, &stsError{http.StatusBadRequest, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey."}
	case !now.Before(s.expires):
		return "", nil, &stsError{http.StatusBadRequest, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."}
	}
	return s.secret, s, nil
}

// mayAssume reports whether a session may call AssumeRole on a role: its
// role's policy and its session policy, when set, must allow sts:AssumeRole
// on the role's ARN (acs:ram::<account-id>:role/<name>). A role without a
// policy may do anything.
func (s *session) mayAssume(arn string) bool {
	for _, p := range []*ramPolicy{s.role.policy, s.policy} {
		if p == nil {
			continue
		}
		if ok, _ := p.decide("sts:AssumeRole", arn); !ok {
			return false
		}
	}
	return true
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// ExpireSessions makes every issued STS credential expire now, for tests of
// credential refresh.
func (e *Emulator) ExpireSessions() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, s := range e.sessions {
		s.expires = now
	}
}
