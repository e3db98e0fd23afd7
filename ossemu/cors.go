package ossemu

import (
	"net/http"
	"strconv"
	"strings"
)

// CORSRule is one bucket CORS rule, as OSS's PutBucketCors takes it.
// Origins and headers may hold one * wildcard each.
type CORSRule struct {
	AllowedOrigins []string
	AllowedMethods []string
	// AllowedHeaders lists the request headers a preflight may ask for;
	// "*" allows any.
	AllowedHeaders []string
	ExposeHeaders  []string
	MaxAgeSeconds  int
}

// DefaultCORS allows pages served from localhost or 127.0.0.1 on any port
// to upload and read, and exposes ETag, x-oss-request-id and Location.
func DefaultCORS() []CORSRule {
	return []CORSRule{{
		AllowedOrigins: []string{"http://localhost:*", "http://127.0.0.1:*", "http://*.localhost:*",
			"https://localhost:*", "https://127.0.0.1:*", "https://*.localhost:*"},
		AllowedMethods: []string{"GET", "PUT", "POST", "DELETE", "HEAD"},
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  []string{"ETag", "x-oss-request-id", "Location"},
		MaxAgeSeconds:  600,
	}}
}

func (c CORSRule) allows(origin, method string, headers []string) bool {
	if !matchAny(c.AllowedOrigins, origin, true) {
		return false
	}
	okMethod := false
	for _, m := range c.AllowedMethods {
		if strings.EqualFold(m, method) {
			okMethod = true
		}
	}
	if !okMethod {
		return false
	}
	for _, h := range headers {
		if !matchAny(c.AllowedHeaders, h, true) {
			return false
		}
	}
	return true
}

func (e *Emulator) corsRule(bucketName, origin, method string, headers []string) *CORSRule {
	rules := e.corsRules(bucketName)
	for i := range rules {
		if rules[i].allows(origin, method, headers) {
			return &rules[i]
		}
	}
	return nil
}

// preflight answers an OPTIONS request as OSS does: 200 with the rule's
// headers, or 403 AccessForbidden.
func (e *Emulator) preflight(w http.ResponseWriter, r *http.Request, bucketName string) *ossError {
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	if origin == "" || method == "" {
		return newErr(http.StatusForbidden, "AccessForbidden",
			"Insufficient information. Origin request header needed.")
	}
	var headers []string
	for _, h := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			headers = append(headers, strings.ToLower(h))
		}
	}
	rule := e.corsRule(bucketName, origin, method, headers)
	if rule == nil {
		return newErr(http.StatusForbidden, "AccessForbidden",
			"CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Requet-Headers are not whitelisted by the resource's CORS spec.")
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(headers) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(headers, ", "))
	}
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(rule.MaxAgeSeconds))
	}
	h.Add("Vary", "Origin")
	w.WriteHeader(http.StatusOK)
	return nil
}

// corsHeaders adds the CORS answer to an actual (non-preflight) request.
func (e *Emulator) corsHeaders(w http.ResponseWriter, r *http.Request, bucketName string) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	rule := e.corsRule(bucketName, origin, r.Method, nil)
	if rule == nil {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(rule.MaxAgeSeconds))
	}
	h.Add("Vary", "Origin")
}
