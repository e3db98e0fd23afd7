package osssign

// uriUnreserved marks the bytes V4 canonicalization leaves as they are:
// A-Z a-z 0-9 - _ . ~
var uriUnreserved = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// AppendURIEncode appends s percent-encoded as OSS V4 canonicalizes it: every
// byte but A-Z a-z 0-9 - _ . ~ (and '/' when keepSlash) as %XX, upper case.
func AppendURIEncode(b []byte, s string, keepSlash bool) []byte {
	const upperHex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if uriUnreserved[c] || (keepSlash && c == '/') {
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
		start = i + 1
	}
	return append(b, s[start:]...)
}
