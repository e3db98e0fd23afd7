package caddyoss

// What an example's signing routes are asked, by whom, and what in an
// answer counts as signed.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// signingRequest is one request to a signing route, and what a signed
// answer to it carries.
type signingRequest struct {
	method, path, body, signed string
}

// signingRequests are the requests that ask h's signing routes, with
// their default paths resolved as Provision resolves them.
func signingRequests(h Handler) []signingRequest {
	var rs []signingRequest
	policy := routePath(h.PolicyPath, defaultPolicyPath, true)
	const q = "?filename=a.png&type=image/png&size=9"
	if policy != routeOff {
		rs = append(rs, signingRequest{"GET", policy + q, "", "policy"})
	}
	if p := routePath(h.PresignPath, defaultPresignPath, true); p != routeOff {
		rs = append(rs, signingRequest{"GET", p + q, "", "url"})
	}
	if p := routePath(h.STSPath, defaultSTSPath, h.STS != nil); p != routeOff {
		rs = append(rs, signingRequest{"GET", p, "", "AccessKeyId"})
	}
	if p := routePath(h.UppyPath, defaultUppyPath, policy != routeOff); p != routeOff {
		prefix := strings.TrimSuffix(p, "/") + "/s3/"
		rs = append(rs,
			signingRequest{"GET", prefix + "params?filename=a.png&type=image/png", "", "policy"},
			signingRequest{"POST", prefix + "multipart", `{"filename":"a.png","type":"image/png","metadata":{}}`, "uploadId"})
	}
	return rs
}

// defaultSigningRequests ask every signing route at its default path:
// sent to every example, so that a route an example does not configure is
// seen not to answer either.
var defaultSigningRequests = signingRequests(Handler{STS: &STSConfig{}})

// leakedSigning names what in an answer looks signed, or "".
func leakedSigning(resp *http.Response, body string) string {
	all := strings.ToLower(body)
	for name, vs := range resp.Header {
		all += "\n" + strings.ToLower(name) + ": " + strings.ToLower(strings.Join(vs, ","))
	}
	for _, w := range []string{"policy", "signature", "accesskeyid", "securitytoken", "uploadid", "x-oss-credential"} {
		if strings.Contains(all, w) {
			return w
		}
	}
	return ""
}

// exampleLogin is the login service forward_auth asks: 401 unless the
// request carries the session cookie, then 200 with Remote-User.
func exampleLogin(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("session"); err == nil && c.Value == exSession {
			w.Header().Set("Remote-User", exUser)
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "log in first", http.StatusUnauthorized)
	}))
	t.Cleanup(s.Close)
	return s
}

var forgedIdentities = [][2]string{
	{"Remote-User", exUser}, {"X-User", exUser}, {"X-Forwarded-User", exUser}, {"X-Remote-User", exUser},
}
