// Package callbacktest generates the spellings an attacker tries on a
// callback: for the tests of the callback protocol and of the handler.
package callbacktest

import (
	"fmt"
	"strings"
)

// PathVariants generates spellings of p that a router or upstream may
// treat as p: case, slashes, dot segments, ';' parameters, control bytes,
// backslashes, percent-encoding (once and twice) of each byte, and format
// suffixes.
func PathVariants(p string) []string {
	var out []string
	add := func(s string) { out = append(out, s) }
	add(strings.ToUpper(p))
	for i := 1; i < len(p); i++ {
		if c := p[i]; c >= 'a' && c <= 'z' {
			add(p[:i] + strings.ToUpper(string(c)) + p[i+1:])
		}
	}
	add(p + "/")
	add(p + "//")
	add("/" + p)
	add(p + "/.")
	add(p + "/./")
	add(p + ".")
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		add(p[:i] + "/" + p[i:])
		add(p[:i] + "/." + p[i:])
		add(p[:i] + "/x/.." + p[i:])
		add(p[:i] + `\` + p[i+1:])
		add(p[:i] + "%2f" + p[i+1:])
		add(p[:i] + "%2F" + p[i+1:])
		add(p[:i] + "%5c" + p[i+1:])
		add(p[:i] + "%252f" + p[i+1:])
	}
	for _, suffix := range []string{";", ";x", ";jsessionid=1", "%00", "%00.png", "%0a", "%0d%0a", "%09", "%20", "%2e", "%3b", "%3bx", "%2f", "%252f",
		".json", ".JSON", ".php", ".xml", ".html", "%2ejson", "%2Ejson", "%252ejson", ".json/", ".json.", ".tar.gz", ".json;x", ".php%00"} {
		add(p + suffix)
	}
	for i := 1; i < len(p); i++ {
		enc := fmt.Sprintf("%%%02X", p[i])
		add(p[:i] + enc + p[i+1:])
		add(p[:i] + strings.ToLower(enc) + p[i+1:])
		add(p[:i] + "%25" + enc[1:] + p[i+1:])
	}
	return out
}
