package caddyoss

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterDirective("oss_upload", parseDirective)
	// After basic_auth and forward_auth, so the signing routes see the
	// authenticated user; before reverse_proxy, so verified callbacks reach
	// the upstream app.
	httpcaddyfile.RegisterDirectiveOrder("oss_upload", httpcaddyfile.After, "forward_auth")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	oss_upload [<matcher>] {
//	    bucket      <name>
//	    region      <region-id> [unlisted]
//	    endpoint    <url>
//	    upload_url  <url>
//
//	    access_key_id     <id>
//	    access_key_secret <secret>
//	    signature_version v4|v1
//
//	    key_prefix   <prefix>
//	    key_template <template> [overwrite]
//	    max_size     <size>
//	    min_size     <size>
//	    allow_types  <mime-pattern...>
//	    default_type <mime>
//	    presign_format json|url
//	    expires      <duration>
//	    client_keys
//	    storage_class <class>
//	    form_fields  full|minimal
//
//	    sts_path      <path>|off
//	    policy_path   <path>|off
//	    presign_path  <path>|off
//	    uppy_path     <path>|off
//	    callback_path <path>|off
//	    confirm_path  <path>|off
//
//	    sts {
//	        role_arn       <arn>
//	        session_name   <name>
//	        duration       <duration>
//	        refresh_before <duration>
//	        endpoint       <host-or-url>
//	        external_id    <id>
//	        cache_size     <n>
//	    }
//
//	    callback {
//	        url         <url>
//	        host        <host>
//	        body        <template>
//	        body_type   form|json
//	        var         <name> <value>
//	        trusted_key <pem-file>
//	        max_body    <size>
//	        verify_only
//	        binding_key <secret>
//	        delivery    queued|direct
//	        answer_within <duration>
//	        retry_for   <duration>
//	        sni         on|off
//	        confirm_only
//	    }
//	}
//
// Besides the syntax, it checks what it can without the environment (the
// checks Validate repeats for JSON configs), so that `caddy adapt` reports
// them with the file and line: bucket name, region id and the endpoint's
// region, key_template, media types, sizes, durations, route paths,
// form_fields against the options it cannot keep, a callback block
// without url, and confirm_path or confirm_only without what they need.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()                         // consume directive name
	var callbackAt func(error) error // adds the callback block's file and line
	var confirmAt func(error) error  // adds confirm_path's file and line
	var quotaAt func(error) error    // adds the quota block's file and line
	err := eachSubdirective(d, "", nil, func(name string) error {
		var err error
		switch name {
		case "bucket":
			if err = oneArg(d, &h.Bucket); err == nil && !strings.Contains(h.Bucket, "{") {
				err = wrapErr(d, checkBucket(h.Bucket))
			}
		case "region":
			err = h.unmarshalRegion(d)
		case "endpoint":
			if err = oneArg(d, &h.Endpoint); err == nil && !strings.Contains(h.Region, "{") {
				err = wrapErr(d, checkEndpointRegion("endpoint", h.Endpoint, h.Region, h.Bucket))
			}
		case "upload_url":
			if err = oneArg(d, &h.UploadURL); err == nil && !strings.Contains(h.Region, "{") {
				err = wrapErr(d, checkEndpointRegion("upload_url", h.UploadURL, h.Region, h.Bucket))
			}
		case "access_key_id":
			err = oneArg(d, &h.AccessKeyID)
		case "access_key_secret":
			err = oneArg(d, &h.AccessKeySecret)
		case "signature_version":
			if err = oneArg(d, &h.SignatureVersion); err == nil &&
				h.SignatureVersion != osssign.V4 && h.SignatureVersion != osssign.V1 {
				err = d.Errf("signature_version must be v4 or v1, got '%s'", h.SignatureVersion)
			}
		case "key_prefix":
			err = oneArg(d, &h.KeyPrefix)
		case "key_template":
			err = h.unmarshalKeyTemplate(d)
		case "max_size":
			if err = sizeArg(d, &h.MaxSize); err == nil {
				err = wrapErr(d, checkSizes(h.MinSize, h.MaxSize))
			}
		case "min_size":
			if err = sizeArg(d, &h.MinSize); err == nil {
				err = wrapErr(d, checkSizes(h.MinSize, h.MaxSize))
			}
		case "allow_types":
			h.AllowTypes = d.RemainingArgs()
			if len(h.AllowTypes) == 0 {
				return d.ArgErr()
			}
			for _, t := range h.AllowTypes {
				if err := validTypePattern(t); err != nil {
					return d.WrapErr(err)
				}
				if err := checkTypeSpelling("allow_types", t); err != nil {
					return d.WrapErr(err)
				}
			}
			if err = wrapErr(d, checkDefaultType(h.DefaultType, h.AllowTypes)); err == nil {
				err = wrapErr(d, checkFormFields(h.FormFields, h.StorageClass, h.AllowTypes))
			}
		case "default_type":
			if err = oneArg(d, &h.DefaultType); err == nil {
				if err = wrapErr(d, checkDefaultType(h.DefaultType, h.AllowTypes)); err == nil {
					err = wrapErr(d, checkTypeSpelling("default_type", h.DefaultType))
				}
			}
		case "presign_format":
			if err = oneArg(d, &h.PresignFormat); err == nil {
				err = wrapErr(d, checkPresignFormat(h.PresignFormat))
			}
		case "expires":
			if err = durationArg(d, &h.Expires); err == nil {
				err = wrapErr(d, checkExpires(time.Duration(h.Expires)))
			}
		case "client_keys":
			err = flagArg(d, &h.ClientKeys)
		case "storage_class":
			if err = oneArg(d, &h.StorageClass); err == nil {
				if _, ok := canonicalStorageClass(h.StorageClass); !ok {
					err = d.Errf("storage_class must be Standard, IA, Archive, ColdArchive or DeepColdArchive, got '%s'", h.StorageClass)
				} else {
					err = wrapErr(d, checkFormFields(h.FormFields, h.StorageClass, h.AllowTypes))
				}
			}
		case "form_fields":
			if err = oneArg(d, &h.FormFields); err == nil {
				err = wrapErr(d, checkFormFields(h.FormFields, h.StorageClass, h.AllowTypes))
			}
		case "sts_path":
			err = h.unmarshalRoutePath(d, &h.STSPath)
		case "policy_path":
			err = h.unmarshalRoutePath(d, &h.PolicyPath)
		case "presign_path":
			err = h.unmarshalRoutePath(d, &h.PresignPath)
		case "uppy_path":
			if err = h.unmarshalRoutePath(d, &h.UppyPath); err == nil {
				err = wrapErr(d, checkUppyPath(h.UppyPath, nil))
			}
		case "callback_path":
			err = h.unmarshalRoutePath(d, &h.CallbackPath)
		case "confirm_path":
			confirmAt = at(d)
			err = h.unmarshalRoutePath(d, &h.ConfirmPath)
		case "sts":
			h.STS = new(STSConfig)
			err = h.STS.unmarshalCaddyfile(d)
		case "callback":
			callbackAt = at(d)
			h.Callback = new(CallbackConfig)
			err = h.Callback.unmarshalCaddyfile(d)
		case "quota":
			quotaAt = at(d)
			h.Quota = new(QuotaConfig)
			err = h.Quota.unmarshalCaddyfile(d)
		default:
			return d.Errf("unrecognized subdirective '%s'", name)
		}
		return err
	})
	if err != nil {
		return err
	}
	// What only the whole block tells.
	if c := h.Callback; c != nil && c.URL == "" && !c.VerifyOnly && h.signingConfigured() {
		return callbackAt(errors.New(errCallbackURL))
	}
	if err := h.checkConfirm(); err != nil {
		if !h.confirmOn() {
			return callbackAt(err) // confirm_only without the confirm route
		}
		return confirmAt(err)
	}
	if err := errors.Join(h.validateQuota()...); err != nil {
		return quotaAt(err)
	}
	return nil
}

// at returns a function that adds the current token's file and line to an
// error found once the whole block is read.
func at(d *caddyfile.Dispenser) func(error) error {
	file, line := d.File(), d.Line()
	return func(err error) error { return fmt.Errorf("%w, at %s:%d", err, file, line) }
}

// unmarshalRegion reads region <id> [unlisted] and checks the id, and the
// endpoint and upload_url given before it against it.
func (h *Handler) unmarshalRegion(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 2 && args[1] == "unlisted":
		h.RegionUnlisted = true
	case len(args) == 2:
		return d.Errf("region: unexpected argument '%s' (the only option is 'unlisted', for a region OSS opened after this release)", args[1])
	case len(args) == 0:
		return d.Errf("region: missing value")
	case len(args) != 1:
		return d.Errf("region: unexpected argument '%s'", args[2])
	}
	h.Region = args[0]
	if strings.Contains(h.Region, "{") {
		return nil
	}
	if err := checkRegionID(h.Region, h.RegionUnlisted); err != nil {
		return d.WrapErr(err)
	}
	for _, u := range []struct{ name, val string }{{"endpoint", h.Endpoint}, {"upload_url", h.UploadURL}} {
		if err := checkEndpointRegion(u.name, u.val, h.Region, h.Bucket); err != nil {
			return d.WrapErr(err)
		}
	}
	return nil
}

// unmarshalKeyTemplate reads key_template <template> [overwrite] and
// checks the template.
func (h *Handler) unmarshalKeyTemplate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 2 && args[1] == "overwrite":
		h.KeyTemplateOverwrite = true
	case len(args) == 2:
		return d.Errf("key_template: unexpected argument '%s' (the only option is 'overwrite')", args[1])
	case len(args) != 1:
		return d.ArgErr()
	}
	h.KeyTemplate = args[0]
	if err := checkKeyTemplate(h.KeyTemplate); err != nil {
		return d.WrapErr(err)
	}
	if !h.KeyTemplateOverwrite && !templateHasID(h.KeyTemplate) {
		return d.Errf("key_template: '%s' has no {id}, so uploads could share a key and overwrite each other; add {id}, or write 'key_template %s overwrite' to allow it",
			h.KeyTemplate, h.KeyTemplate)
	}
	return nil
}

// unmarshalRoutePath reads a route path into dst and checks it against
// the routes set so far.
func (h *Handler) unmarshalRoutePath(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if err := oneArg(d, dst); err != nil {
		return err
	}
	if err := checkRoutePath(name, *dst); err != nil {
		return d.WrapErr(err)
	}
	return wrapErr(d, checkDuplicateRoute(h.routes(), route{name, *dst}))
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Handler)(nil)
