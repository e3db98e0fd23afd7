package caddyoss

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logStartup writes the handler's one startup line: what is on and where
// the credentials come from. It never logs a key, secret or token.
func (h *Handler) logStartup() {
	h.logger.Info("oss_upload configured", h.startupFields()...)
}

// startupFields are the fields of the startup line:
//
//   - bucket, region, signature_version;
//   - routes: each route that is on, by name (sts, policy, presign,
//     callback), with its path;
//   - callbacks: "bound" (only callbacks carrying this site's binding are
//     accepted), "verify_only", or "off" without a callback block;
//   - delivery: how verified callbacks reach the upstream ("queued",
//     "direct"), "off" without a callback route;
//   - handler_id: with a callback route, the id that names the handler's
//     events (in storage, the admin API and caddy_oss_callback_queue_dead);
//   - dead_events: how many of its events are dead, when there are any;
//   - credentials: "static" (the key pair in the config), "environment",
//     "oidc", "cli_profile", "credentials_file", "ecs_ram_role",
//     "credentials_uri" or "default_chain:<provider>" (see
//     credentialOrigin), or "unused" when no route needs them;
//   - form_fields: "minimal" when set (PostObject policies then pin
//     neither the ACL nor the storage class); absent otherwise.
func (h *Handler) startupFields() []zap.Field {
	routes := zapcore.ObjectMarshalerFunc(func(enc zapcore.ObjectEncoder) error {
		for _, r := range []struct{ name, path string }{
			{"sts", h.STSPath}, {"policy", h.PolicyPath},
			{"presign", h.PresignPath}, {"callback", h.CallbackPath},
			{"uppy", h.UppyPath},
		} {
			if r.path != routeOff {
				enc.AddString(r.name, r.path)
			}
		}
		return nil
	})
	callbacks := "off"
	if c := h.Callback; c != nil {
		callbacks = "bound"
		if c.VerifyOnly {
			callbacks = "verify_only"
		}
	}
	delivery := "off"
	if h.CallbackPath != routeOff {
		delivery = h.Callback.Delivery
	}
	origin := "unused"
	if h.creds != nil {
		origin = h.creds.origin
	}
	fields := []zap.Field{
		zap.String("bucket", h.Bucket),
		zap.String("region", h.Region),
		zap.Object("routes", routes),
		zap.String("signature_version", h.SignatureVersion),
		zap.String("callbacks", callbacks),
		zap.String("delivery", delivery),
		zap.String("credentials", origin),
	}
	if h.CallbackPath != routeOff {
		fields = append(fields, zap.String("handler_id", h.id))
		if n := h.deadAtStartup(); n > 0 {
			fields = append(fields, zap.Int("dead_events", n))
		}
	}
	if h.FormFields == formFieldsMinimal {
		// PostObject policies pin neither the ACL nor the storage class.
		fields = append(fields, zap.String("form_fields", formFieldsMinimal))
	}
	return fields
}
