package callback

import (
	"crypto/md5"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"math/big"
	"net/url"
	"strings"
)

// md5DigestInfo is the DER prefix of an MD5 DigestInfo (PKCS#1 v1.5).
var md5DigestInfo = []byte{0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00, 0x04, 0x10}

// ErrBadSignature is a signature that does not verify with the key.
var ErrBadSignature = errors.New("callback signature does not verify")

// VerifyMD5 checks an RSASSA-PKCS1-v1_5 signature with MD5 over msg. It
// does the RSA arithmetic itself: OSS signs callbacks with a 512-bit key,
// which crypto/rsa refuses since Go 1.24, and this code runs in binaries
// whose GODEBUG settings it does not control.
func VerifyMD5(pub *rsa.PublicKey, msg, sig []byte) error {
	k := (pub.N.BitLen() + 7) / 8
	if len(sig) != k || k < len(md5DigestInfo)+md5.Size+11 || pub.E < 3 {
		return ErrBadSignature
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(pub.N) >= 0 {
		return ErrBadSignature
	}
	m := new(big.Int).Exp(s, big.NewInt(int64(pub.E)), pub.N)
	em := m.FillBytes(make([]byte, k))

	sum := md5.Sum(msg)
	want := make([]byte, k)
	want[0], want[1] = 0x00, 0x01
	tLen := len(md5DigestInfo) + md5.Size
	for i := 2; i < k-tLen-1; i++ {
		want[i] = 0xff
	}
	want[k-tLen-1] = 0x00
	copy(want[k-tLen:], md5DigestInfo)
	copy(want[k-md5.Size:], sum[:])
	if subtle.ConstantTimeCompare(em, want) != 1 {
		return ErrBadSignature
	}
	return nil
}

// StringToSign is what OSS signs: the percent-decoded path, the raw query
// with its '?', a newline, and the body.
func StringToSign(requestURI string, body []byte) ([]byte, error) {
	path, query, hasQuery := strings.Cut(requestURI, "?")
	decoded, err := url.PathUnescape(path)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(decoded)+len(query)+2+len(body))
	out = append(out, decoded...)
	if hasQuery {
		out = append(out, '?')
		out = append(out, query...)
	}
	out = append(out, '\n')
	return append(out, body...), nil
}
