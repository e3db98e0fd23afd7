package callback

import (
	"crypto/sha256"
	"encoding/hex"
)

// HandlerID names a handler by what decides which callbacks it may accept:
// the bucket, the key_prefix template, the callback path and the callback
// URL. Instances of one site in a cluster share it; two sites, or two
// tenants on one storage, do not. It is stable across reloads and
// restarts, and names the handler's records and retries.
func HandlerID(bucket, keyPrefixTemplate, callbackPath, callbackURL string) string {
	return digest("caddy-oss handler 1", bucket, keyPrefixTemplate, callbackPath, callbackURL)[:32]
}

// EventID names one upload event: the handler that accepts it, the bucket,
// the object, the etag OSS stored, and the binding's own spelling (one per
// signing decision; "" for callbacks accepted without a binding). It never
// depends on the request's URI, query, headers or any other spelling, so
// every copy, retry and instance of one upload has the same id, which is
// also the Idempotency-Key the app receives.
func EventID(handlerID, bucket, object, etag, binding string) string {
	return digest("caddy-oss event 1", handlerID, bucket, object, etag, binding)
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
