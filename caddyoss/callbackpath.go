package caddyoss

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// stripVerifiedHeader removes every copy of X-Oss-Callback-Verified a
// client sent, in any spelling an upstream could read as that header:
// any case, and '_' for '-' (CGI, PHP and some proxies map both to
// HTTP_X_OSS_CALLBACK_VERIFIED).
func stripVerifiedHeader(h http.Header) {
	for name := range h {
		if sameHeaderName(name, verifiedHeader) {
			delete(h, name)
		}
	}
}

func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := lowerASCII(a[i]), lowerASCII(b[i])
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isCallbackRequest reports whether a request is for the callback path in
// any spelling that Caddy's path matcher or a common upstream would route
// there: another case, doubled or trailing slashes, dot segments, ';'
// parameters, backslashes, percent-encoding (once or more), or a NUL or
// other control byte that ends the path for C-based servers. Such a request
// is verified or refused, never passed on as it is.
func (h *Handler) isCallbackRequest(r *http.Request) bool {
	if h.CallbackPath == routeOff {
		return false
	}
	if r.URL.Path == h.CallbackPath {
		return true
	}
	// Most requests spell their path plainly: compare without allocating.
	if plain, ok := plainRequestPath(r); ok {
		return strings.EqualFold(strings.TrimRight(plain, "/"), h.callbackCanon)
	}
	candidates := []string{r.URL.Path, r.URL.RawPath, r.RequestURI}
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		candidates = append(candidates, or.RequestURI)
		if or.URL != nil {
			candidates = append(candidates, or.URL.Path, or.URL.RawPath)
		}
	}
	for _, c := range candidates {
		if c != "" && callback.CanonicalPath(c) == h.callbackCanon {
			return true
		}
	}
	return false
}

// plainRequestPath returns the path when every spelling of it is the same
// run of letters, digits, '/', '-', '_' and '~' with no doubled slash: its
// canonical form is then just its lower case without trailing slashes.
func plainRequestPath(r *http.Request) (string, bool) {
	p := r.URL.Path
	if r.URL.RawPath != "" || (r.RequestURI != "" && !strings.HasPrefix(r.RequestURI, p)) {
		return "", false
	}
	if rest := r.RequestURI[min(len(p), len(r.RequestURI)):]; rest != "" && rest[0] != '?' {
		return "", false
	}
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil && or.URL.Path != p {
		return "", false
	}
	if p == "" || p[0] != '/' || strings.Contains(p, "//") {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '-' || c == '_' || c == '~') {
			return "", false
		}
	}
	return p, true
}
