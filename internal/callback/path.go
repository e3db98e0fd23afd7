package callback

import (
	"net/url"
	"path"
	"strings"
)

// CanonicalPath folds every spelling of a path that a router or a common
// upstream may route to the same place into one: percent-decoded until
// stable, cut at '?', ';' or a control byte, '\' read as '/', lower case,
// cleaned, without trailing dots or spaces, and without a format suffix
// (".json", ".php", "%2ejson"), which Rails and legacy Spring routes read
// as the same action. Two paths with the same canonical form are the same
// route to such an app.
func CanonicalPath(p string) string {
	for range 4 {
		p = cutPath(p)
		d, err := url.PathUnescape(p)
		if err != nil || d == p {
			break
		}
		p = d
	}
	p = cutPath(p)
	p = strings.ReplaceAll(p, `\`, "/")
	p = strings.ToLower(p)
	p = path.Clean("/" + p)
	p = strings.TrimRight(p, ". ")
	for {
		q := strings.TrimRight(cutSuffix(p), ". ")
		if q == p {
			return p
		}
		p = q
	}
}

// cutSuffix drops a format suffix: a '.' and one to ten letters or digits
// ending the last segment, after at least one other byte of it.
func cutSuffix(p string) string {
	dot := strings.LastIndexByte(p, '.')
	if dot < 0 || dot == len(p)-1 || len(p)-dot-1 > 10 {
		return p
	}
	slash := strings.LastIndexByte(p, '/')
	if dot <= slash+1 {
		return p
	}
	for _, c := range []byte(p[dot+1:]) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return p
		}
	}
	return p[:dot]
}

// cutPath ends a path at the first '?', ';' or control byte.
func cutPath(p string) string {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '?' || c == ';' || c < 0x20 || c == 0x7f {
			return p[:i]
		}
	}
	return p
}
