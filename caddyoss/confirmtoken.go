package caddyoss

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caddy-oss/caddy-oss/internal/callback"
	"github.com/caddy-oss/caddy-oss/internal/jsonw"
)

// The signing side of the confirm route: what a signing answer carries
// for it, and the configuration it needs.

// confirmOn reports whether the confirm route is on.
func (h *Handler) confirmOn() bool {
	return h.ConfirmPath != "" && h.ConfirmPath != routeOff
}

// issuesVars reports whether signing answers carry the callback
// variables (the custom ones and the binding): in the callback parameter
// they ask OSS for, in the confirm token, or both.
func (h *Handler) issuesVars() bool {
	return h.callbackB64 != "" || h.confirmOn()
}

// confirmToken is the confirm token of the variables issueVars returned
// (keyed x:<name>), "" when the confirm route is off.
func (h *Handler) confirmToken(vars map[string]string) string {
	if !h.confirmOn() {
		return ""
	}
	return callback.ConfirmToken(vars["x:"+bindingVar], customVars(vars))
}

// appendConfirm adds the member name ("confirm", "Confirm" in the STS
// answer's casing) that tells an uploader how to confirm its upload:
// {"url": <confirm_path>, "token": <token>}. Nothing when token is "".
func (h *Handler) appendConfirm(o *jsonw.Object, name, token string) {
	if token == "" {
		return
	}
	o.Object(name, func(c *jsonw.Object) {
		c.Str("url", h.ConfirmPath)
		c.Str("token", token)
	})
}

// appendConfirmMember is appendConfirm for answers written member by
// member: `,"confirm":{…}`.
func (h *Handler) appendConfirmMember(b []byte, token string) []byte {
	if token == "" {
		return b
	}
	b = append(b, `,"confirm":{"url":`...)
	b = jsonw.AppendString(b, h.ConfirmPath)
	b = append(b, `,"token":`...)
	b = jsonw.AppendString(b, token)
	return append(b, '}')
}

// checkConfirm checks confirm_path and callback confirm_only against the
// rest of the configuration; UnmarshalCaddyfile and Validate share it.
func (h *Handler) checkConfirm() error {
	c := h.Callback
	switch {
	case !h.confirmOn():
		if c != nil && c.ConfirmOnly {
			return errors.New("callback.confirm_only: needs confirm_path (e.g. confirm_path /oss/confirm): without a callback and without the confirm route, no upload would reach the app")
		}
		return nil
	case c == nil:
		return errors.New("confirm_path: the confirm route needs the callback block: its url says where confirmed uploads go, its body and vars what the app receives")
	case c.VerifyOnly:
		return errors.New("confirm_path: the confirm route checks the token this handler's signing answers issue, which verify_only turns off; remove verify_only or set confirm_path off")
	}
	cbPath := routePath(h.CallbackPath, defaultCallbackPath, true) // the callback block is there
	if cbPath != routeOff && callback.CanonicalPath(h.ConfirmPath) == callback.CanonicalPath(cbPath) {
		return fmt.Errorf("confirm_path: %q is a spelling of callback_path %q, every spelling of which is the callback route; choose another path, such as /oss/confirm", h.ConfirmPath, cbPath)
	}
	return nil
}

// confirmVars are the OSS variables the confirm route can fill from what
// OSS stores (HeadObject), besides the custom x:<name> ones. The others
// (image information, the uploader's IP and VPC, the upload's request id
// and operation) come only with an OSS callback.
var confirmVars = map[string]bool{
	"bucket": true, "object": true, "etag": true, "size": true, "mimeType": true,
	"crc64": true, "contentMd5": true,
}

// checkConfirmBody refuses a callback body the confirm route could not
// render as OSS would.
func checkConfirmBody(c *CallbackConfig) error {
	_, tpl, err := c.effectiveBody()
	if err != nil || tpl == nil {
		return nil // reported by Validate
	}
	var unknown []string
	for _, f := range tpl.fields {
		if f.variable != "" && !confirmVars[f.variable] && !strings.HasPrefix(f.variable, "x:") {
			unknown = append(unknown, "${"+f.variable+"}")
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("callback.body: %s come(s) only with an OSS callback, so the confirm route cannot fill them; remove them from the body, or set confirm_path off (the confirm route fills ${bucket}, ${object}, ${etag}, ${size}, ${mimeType}, ${crc64}, ${contentMd5} and the vars)",
			strings.Join(unknown, " "))
	}
	return nil
}
