// Package osssign signs for Alibaba Cloud OSS: V4 signing keys and
// presigned URLs, V1 presigned URLs, and PostObject policies in both
// versions, with the URI encoding and UTC time layouts they use. It is
// pure: no network, no Caddy, no clock of its own (callers pass the time).
//
// A Signer keeps the derived V4 keys and keyed HMACs it has used, so a
// signature costs one HMAC and allocates nothing for the hash; the zero
// Signer is ready to use and safe for concurrent use.
//
// The tests check every signature against the published vectors
// (protocol.md, vectors.md), aliyun-oss-go-sdk and an independent
// reference signer (internal/refsign).
package osssign

// Signer signs URLs and policies. The zero value is ready to use.
type Signer struct {
	v4 v4KeyCache
	v1 v1MACCache
}
