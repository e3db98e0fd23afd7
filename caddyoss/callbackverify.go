package caddyoss

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// verifyCallback checks everything about a callback and returns the event
// it reports, not yet recorded.
func (cr *callbackRoute) verifyCallback(ctx context.Context, r *http.Request) (*delivery.Event, map[string]string, error) {
	if r.Method != http.MethodPost {
		return nil, nil, callbackErr(http.StatusMethodNotAllowed, reasonMethod, "callbacks must be POST")
	}
	sigB64 := r.Header.Get("Authorization")
	keyURL := r.Header.Get("X-Oss-Pub-Key-Url")
	switch {
	case sigB64 == "":
		return nil, nil, callbackErr(http.StatusBadRequest, reasonHeaders, "missing Authorization header")
	case keyURL == "":
		return nil, nil, callbackErr(http.StatusBadRequest, reasonHeaders, "missing x-oss-pub-key-url header")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return nil, nil, callbackErr(http.StatusBadRequest, reasonHeaders, "Authorization is not valid base64")
	}
	body, err := cr.readBody(r)
	if err != nil {
		return nil, nil, err
	}
	if want := r.Header.Get("Content-MD5"); want != "" {
		sum := md5.Sum(body)
		if base64.StdEncoding.EncodeToString(sum[:]) != want {
			return nil, nil, callbackErr(http.StatusBadRequest, reasonBody, "Content-MD5 does not match the body")
		}
	}
	keys, err := cr.verifier.keysFor(ctx, keyURL)
	if err != nil {
		return nil, nil, err
	}
	uri := originalRequestURI(r)
	msg, err := callback.StringToSign(uri, body)
	if err != nil {
		return nil, nil, callbackErr(http.StatusBadRequest, reasonSignature, "request path is not valid percent-encoding")
	}
	verified := false
	for _, k := range keys {
		if callback.VerifyMD5(k, msg, sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, nil, callbackErr(http.StatusForbidden, reasonSignature, callback.ErrBadSignature.Error())
	}
	if err := checkBodySeparators(body); err != nil {
		return nil, nil, err
	}
	if cr.bodyTpl == nil {
		facts := callbackFacts(body)
		ev, err := cr.unboundEvent(arrived(r, body), facts)
		return ev, facts, err
	}
	// A bound callback was sent to the URL this handler issued: its path
	// and query are part of what OSS signed.
	if signedURI := string(msg[:len(msg)-len(body)-1]); signedURI != cr.target.signed {
		return nil, nil, callbackErr(http.StatusForbidden, reasonURL, "callback was sent to another URL (path or query) than the one this handler issues")
	}
	bc, err := cr.checkBound(ctx, r, body)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := bc.vars["size"]; !ok {
		// What OSS stores, which ${size} would have said: the quota
		// charges it.
		bc.vars["size"] = bc.stored.Get("Content-Length")
	}
	return cr.boundEvent(r, bc, body), bc.vars, nil
}

// arrived is the event of a body that arrived with r, not yet named: the
// Host and address it came from are kept for its retries.
func arrived(r *http.Request, body []byte) *delivery.Event {
	return &delivery.Event{Body: body, Header: map[string]string{metaRemote: r.RemoteAddr, metaHost: r.Host}}
}

// boundEvent is the event of an upload checkBinding accepted, with the
// body the app receives. Its id comes from the handler, the bucket, the
// object, the ETag OSS stores (not the body's spelling of it) and the
// binding, so the callback and the confirm of one upload are one event.
func (cr *callbackRoute) boundEvent(r *http.Request, bc boundCallback, body []byte) *delivery.Event {
	ev := arrived(r, body)
	ev.ID = callback.EventID(cr.id, cr.Bucket, bc.object, bc.etag, bc.binding)
	ev.Object, ev.Expires = bc.object, bc.expiry
	ev.Header["Content-Type"] = cr.Callback.contentType()
	ev.Header[headerBucket] = cr.Bucket
	return ev
}

// unboundEvent names a callback accepted without a binding (verify_only)
// by the facts its body gives, or by the body itself.
func (cr *callbackRoute) unboundEvent(ev *delivery.Event, facts map[string]string) (*delivery.Event, error) {
	bucket := facts["bucket"]
	if cr.Bucket != "" && bucket != "" && bucket != cr.Bucket {
		return nil, callbackErr(http.StatusForbidden, reasonBucket, fmt.Sprintf("callback names bucket %q, not the configured one", bucket))
	}
	if facts["object"] != "" && facts["etag"] != "" {
		ev.ID = callback.EventID(cr.id, bucket, facts["object"], facts["etag"], "")
	} else {
		sum := sha256.Sum256(ev.Body)
		ev.ID = callback.EventID(cr.id, "", "", "", "body:"+hex.EncodeToString(sum[:]))
	}
	ev.Object = facts["object"]
	window := int64(unboundWindow / time.Second)
	ev.Expires = time.Unix((cr.now().Unix()/window+2)*window, 0)
	ct := "application/x-www-form-urlencoded"
	if t := bytes.TrimSpace(ev.Body); len(t) > 0 && t[0] == '{' {
		ct = "application/json"
	}
	ev.Header["Content-Type"] = ct
	if bucket != "" {
		ev.Header[headerBucket] = bucket
	}
	return ev, nil
}

// alsoExpires lists the other expiries under which a copy of ev may have
// been recorded: for unbound callbacks, the previous window's.
func (cr *callbackRoute) alsoExpires(ev *delivery.Event) []time.Time {
	if cr.bodyTpl != nil {
		return nil
	}
	return []time.Time{ev.Expires.Add(-unboundWindow)}
}

// checkBodySeparators refuses a form body with a raw ';': OSS encodes
// every value it substitutes, so only a forged or relayed body carries
// one, and older parsers (Python before 3.9.2, Rack, Django) split fields
// on it, reading a value the check never saw.
func checkBodySeparators(body []byte) error {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		return nil
	}
	if bytes.IndexByte(body, ';') >= 0 {
		return callbackErr(http.StatusForbidden, reasonBody, "callback form body has a raw ';', which some parsers read as a field separator")
	}
	return nil
}

// readBody reads the body of a callback or confirm, at most max_body.
func (cr *callbackRoute) readBody(r *http.Request) ([]byte, error) {
	limit := cr.Callback.MaxBody
	if limit <= 0 {
		limit = defaultCallbackMaxBody
	}
	return readBody(r, limit)
}

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			// e.g. request_body's limit: its status, counted as body.
			msg := http.StatusText(he.StatusCode)
			if he.Err != nil {
				msg = he.Err.Error()
			}
			he.Err = &callbackError{reason: reasonBody, msg: msg}
			return nil, he
		}
		return nil, callbackErr(http.StatusBadRequest, reasonBody, "reading the body failed")
	}
	if int64(len(b)) > limit {
		return nil, callbackErr(http.StatusBadRequest, reasonBody, fmt.Sprintf("body exceeds max_body (%d bytes)", limit))
	}
	return b, nil
}

// originalRequestURI is the request target as OSS sent it, before any
// rewrite in Caddy.
func originalRequestURI(r *http.Request) string {
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.RequestURI != "" {
		return or.RequestURI
	}
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// callbackFacts picks bucket, object, size, etag and mimeType out of a
// callback body for checks, placeholders, logs and events. The body's own
// shape decides JSON or form: the Content-Type header is not signed.
func callbackFacts(body []byte) map[string]string {
	out := map[string]string{}
	names := []string{"bucket", "object", "size", "etag", "mimeType"}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&m) == nil {
			for _, n := range names {
				if v, ok := m[n]; ok && v != nil {
					out[n] = fmt.Sprint(v)
				}
			}
		}
		return out
	}
	if q, err := url.ParseQuery(string(body)); err == nil {
		for _, n := range names {
			if v := q.Get(n); v != "" {
				out[n] = v
			}
		}
	}
	return out
}
