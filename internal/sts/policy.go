package sts

import (
	"fmt"

	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// UploadPolicy is the inline session policy of the STS route: upload
// actions only, on the bucket below the prefix. A policy longer than 2048
// bytes is an error.
func UploadPolicy(bucket, prefix string) (string, error) {
	// The document json.Marshal would write for it (keys sorted), written
	// directly: this runs on every STS request, cache hits included.
	var buf [512]byte
	b := append(buf[:0], uploadPolicyHead...)
	b = append(b, `"acs:oss:*:*:`...)
	b = jsonw.AppendStringContent(b, bucket+"/") // a bucket name needs no escaping; checked at load
	b = jsonw.AppendStringContent(b, prefix)
	b = append(b, `*"`...)
	b = append(b, uploadPolicyTail...)
	if len(b) > 2048 {
		return "", fmt.Errorf("the STS session policy for prefix %q is longer than 2048 bytes", prefix)
	}
	return string(b), nil
}

const (
	uploadPolicyHead = `{"Statement":[{"Action":["oss:PutObject","oss:InitiateMultipartUpload","oss:UploadPart",` +
		`"oss:CompleteMultipartUpload","oss:AbortMultipartUpload","oss:ListParts"],"Effect":"Allow","Resource":[`
	uploadPolicyTail = `]}],"Version":"1"}`
)
