package ossemu

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSTSSecurityTokenParameter: an empty SecurityToken parameter counts as
// none, so a permanent key sending one is served; a permanent key with a
// token is refused, and a session key needs its own token.
func TestSTSSecurityTokenParameter(t *testing.T) {
	now := time.Date(2023, 12, 3, 12, 12, 30, 0, time.UTC)
	e, err := New(Options{
		Now:        func() time.Time { return now },
		AccessKeys: map[string]string{"ak": "sk"},
		Roles:      []Role{{ARN: "acs:ram::1234567890123456:role/oss-upload"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	nonce := 0
	call := func(ak, sk string, token *string) (int, string) {
		nonce++
		p := map[string]string{
			"Action": "AssumeRole", "Version": "2015-04-01", "Format": "JSON", "AccessKeyId": ak,
			"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": "n" + strings.Repeat("x", nonce),
			"Timestamp": now.Format("2006-01-02T15:04:05Z"), "RoleArn": "acs:ram::1234567890123456:role/oss-upload",
			"RoleSessionName": "chain",
		}
		if token != nil {
			p["SecurityToken"] = *token
		}
		p["Signature"] = rpcSignature(sk, rpcStringToSign("POST", p))
		q := url.Values{}
		for k, v := range p {
			q.Set(k, v)
		}
		w := serve(e, httptest.NewRequest("POST", "http://127.0.0.1/?"+q.Encode(), nil))
		return w.Code, w.Body.String()
	}
	empty, forged := "", "CAISforged"
	for _, tc := range []struct {
		name  string
		token *string
		code  string
	}{
		{"no SecurityToken", nil, ""},
		{"an empty SecurityToken", &empty, ""},
		{"a SecurityToken with a permanent key", &forged, "InvalidSecurityToken.MismatchWithAccessKey"},
	} {
		status, body := call("ak", "sk", tc.token)
		if tc.code == "" && (status != 200 || !strings.Contains(body, `"AccessKeyId":"STS.`)) ||
			tc.code != "" && (status != 400 || !strings.Contains(body, `"Code":"`+tc.code+`"`)) {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	// A session calling with its own key: an empty token is a missing one.
	e.mu.Lock()
	var id string
	var s *session
	for id, s = range e.sessions {
		break
	}
	e.mu.Unlock()
	if status, body := call(id, s.secret, &empty); status != 400 || !strings.Contains(body, `"Code":"MissingSecurityToken"`) {
		t.Errorf("session key with an empty token: %d %s", status, body)
	}
	if status, body := call(id, s.secret, &s.token); status != 200 {
		t.Errorf("session key with its token: %d %s", status, body)
	}
}
