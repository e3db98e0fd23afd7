package caddyoss

// The confirm route: where OSS callbacks cannot reach the site, the
// uploader, once OSS answered its upload, POSTs the object key and the
// token its signing answer gave it. Caddy checks the token as it checks a
// callback's binding, asks OSS for the object's facts (HeadObject: nothing
// the client says but the key and the token is used), holds the object to
// the limits, renders the body the callback template would have produced
// from those facts and the token's variables, and hands the upload to the
// callback route's pipeline (accept): the same event id, Idempotency-Key,
// queue and answers, so an upload confirmed and called back reaches the
// app once.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/delivery"
)

// confirmRequest is the body of POST <confirm_path>:
// {"key": <object key>, "token": <confirm token>}.
type confirmRequest struct {
	key, token string
}

// parseConfirmRequest reads a confirm body: one JSON object with exactly
// the string members key and token, each once, and nothing after it. The
// key must be a valid object key (no empty, "." or ".." segment, no
// control character or backslash, not ending in '/'); it is used as
// written, never decoded.
func parseConfirmRequest(body []byte) (confirmRequest, error) {
	var req confirmRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return req, errors.New(`the body must be a JSON object {"key": "<object key>", "token": "<token>"}`)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, errors.New("the body is not valid JSON")
		}
		name, _ := tok.(string)
		if seen[name] {
			return req, fmt.Errorf("the body names %q twice", clip(name))
		}
		seen[name] = true
		var v string
		switch name {
		case "key":
			err = dec.Decode(&v)
			req.key = v
		case "token":
			err = dec.Decode(&v)
			req.token = v
		default:
			return req, fmt.Errorf(`the body has the member %q: only "key" and "token" are read`, clip(name))
		}
		if err != nil {
			return req, fmt.Errorf("%s must be a string", name)
		}
	}
	if _, err := dec.Token(); err != nil {
		return req, errors.New("the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errors.New("the body has something after its JSON object")
	}
	switch {
	case req.key == "":
		return req, errors.New("key is required: the object key the upload was stored under")
	case req.token == "":
		return req, errors.New("token is required: the confirm token of the upload's signing answer")
	case strings.HasSuffix(req.key, "/"):
		return req, errors.New("key names a folder, not an object")
	}
	if err := checkKeyPart(req.key); err != nil {
		return req, fmt.Errorf("key is not a valid object key: it %v", err)
	}
	return req, nil
}

// clip shortens a client's text for an error message, which is logged.
func clip(s string) string {
	const most = 40
	if len(s) <= most {
		return s
	}
	return strings.ToValidUTF8(s[:most], "") + "…"
}

// serveConfirm answers POST <confirm_path>: a confirm that passes every
// check goes to accept, so the uploader gets the app's answer (or
// {"status":"queued"}, or a copy's answer), as OSS relays a callback's.
// Like a callback, the whole confirm fits in answer_within.
func (cr *callbackRoute) serveConfirm(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(cr.Callback.AnswerWithin))
	defer cancel()
	ev, facts, err := cr.verifyConfirm(ctx, w, r)
	if err != nil {
		cr.logger.Warn("confirm rejected", zap.Error(err), zapRemote(r))
		countConfirm(err)
		return err
	}
	return cr.accept(ctx, w, r, next, ev, facts, viaConfirm)
}

// verifyConfirm checks a confirm and returns the event of its upload, not
// yet recorded, with its facts by OSS variable name.
func (cr *callbackRoute) verifyConfirm(ctx context.Context, w http.ResponseWriter, r *http.Request) (*delivery.Event, map[string]string, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, nil, callbackErr(http.StatusMethodNotAllowed, reasonMethod, "confirms must be POST")
	}
	raw, err := cr.readBody(r)
	if err != nil {
		return nil, nil, err
	}
	req, err := parseConfirmRequest(raw)
	if err != nil {
		return nil, nil, callbackErr(http.StatusBadRequest, reasonBody, err.Error())
	}
	b, custom, err := callback.ParseConfirmToken(req.token)
	if err != nil {
		return nil, nil, callbackErr(http.StatusForbidden, reasonBinding, err.Error())
	}
	// A token issued before a reload turned the quota on or off carries
	// the quota's variables when this config has none, or none when it
	// has: its body is the other template's.
	_, reserved := custom[quotaIDVar]
	tpl := cr.bodyTpl
	if reserved != cr.Callback.quota {
		tpl = cr.quotaTpl
	}
	if !cr.Callback.issuesExactly(custom, reserved) {
		return nil, nil, callbackErr(http.StatusForbidden, reasonBinding, "confirm token carries other variables than this handler's vars")
	}
	vars := make(map[string]string, len(custom)+2)
	for k, v := range custom {
		vars["x:"+k] = v
	}
	vars["x:"+bindingVar] = b.String()
	vars["object"] = req.key
	bc, err := cr.checkBinding(ctx, r, vars, viaConfirm)
	if err != nil {
		return nil, nil, err
	}
	facts := storedFacts(cr.Bucket, bc)
	for k, v := range vars {
		if strings.HasPrefix(k, "x:") {
			facts[k] = v
		}
	}
	return cr.boundEvent(r, bc, []byte(tpl.renderWith(facts))), facts, nil
}

// storedFacts are the OSS variables of an object as OSS stores it
// (HeadObject), by name: what the confirm route fills the body with.
func storedFacts(bucket string, bc boundCallback) map[string]string {
	h := bc.stored
	return map[string]string{
		"bucket":     bucket,
		"object":     bc.object,
		"etag":       bc.etag,
		"size":       h.Get("Content-Length"),
		"mimeType":   h.Get("Content-Type"),
		"crc64":      h.Get("X-Oss-Hash-Crc64ecma"),
		"contentMd5": h.Get("Content-Md5"),
	}
}

// issuesExactly reports whether vars has exactly the names of the custom
// variables a signing answer issues: the vars and, with a quota (this
// config's or the one before a reload), the quota's.
func (c *CallbackConfig) issuesExactly(vars map[string]string, quota bool) bool {
	n := len(c.Vars)
	if quota {
		n += 2
	}
	if len(vars) != n {
		return false
	}
	for k := range vars {
		_, ok := c.Vars[k]
		if !ok && !(quota && (k == quotaIDVar || k == quotaKeyVar)) {
			return false
		}
	}
	return true
}
