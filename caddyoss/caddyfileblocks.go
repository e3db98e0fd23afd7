package caddyoss

import (
	"strconv"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/sts"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func (s *STSConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return eachSubdirective(d, "sts ", nil, func(name string) error {
		var err error
		switch name {
		case "role_arn":
			err = oneArg(d, &s.RoleARN)
		case "session_name":
			err = oneArg(d, &s.SessionName)
		case "duration":
			if err = durationArg(d, &s.Duration); err == nil {
				if err = wrapErr(d, checkSTSDuration(time.Duration(s.Duration))); err == nil {
					err = wrapErr(d, checkRefreshBefore(time.Duration(s.RefreshBefore), time.Duration(s.Duration)))
				}
			}
		case "refresh_before":
			if err = durationArg(d, &s.RefreshBefore); err == nil {
				dur := time.Duration(s.Duration)
				if dur == 0 {
					dur = sts.DefaultDuration
				}
				err = wrapErr(d, checkRefreshBefore(time.Duration(s.RefreshBefore), dur))
			}
		case "endpoint":
			err = oneArg(d, &s.Endpoint)
		case "external_id":
			err = oneArg(d, &s.ExternalID)
		case "cache_size":
			var v string
			if err = oneArg(d, &v); err == nil {
				n, convErr := strconv.Atoi(v)
				if convErr != nil || n < 1 {
					return d.Errf("cache_size must be a positive integer, got '%s'", v)
				}
				s.CacheSize = n
			}
		default:
			return d.Errf("unrecognized sts subdirective '%s'", name)
		}
		return err
	})
}

func (c *CallbackConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	repeatable := map[string]bool{"var": true, "trusted_key": true}
	return eachSubdirective(d, "callback ", repeatable, func(name string) error {
		var err error
		switch name {
		case "url":
			err = oneArg(d, &c.URL)
		case "host":
			err = oneArg(d, &c.Host)
		case "body":
			err = oneArg(d, &c.Body)
		case "body_type":
			if err = oneArg(d, &c.BodyType); err == nil && c.BodyType != bodyTypeForm && c.BodyType != bodyTypeJSON {
				err = d.Errf("body_type must be form or json, got '%s'", c.BodyType)
			}
		case "var":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			if c.Vars == nil {
				c.Vars = map[string]string{}
			}
			if _, dup := c.Vars[args[0]]; dup {
				return d.Errf("duplicate callback var '%s'", args[0])
			}
			if !callbackVarName.MatchString(args[0]) {
				return d.Errf("callback var name '%s' must be lower-case letters, digits or '_'", args[0])
			}
			c.Vars[args[0]] = args[1]
		case "trusted_key":
			var f string
			if err = oneArg(d, &f); err == nil {
				c.TrustedKeys = append(c.TrustedKeys, f)
			}
		case "max_body":
			err = sizeArg(d, &c.MaxBody)
		case "verify_only":
			err = flagArg(d, &c.VerifyOnly)
		case "delivery":
			if err = oneArg(d, &c.Delivery); err == nil && c.Delivery != deliveryModeQueued && c.Delivery != deliveryModeDirect {
				err = d.Errf("delivery must be queued or direct, got '%s'", c.Delivery)
			}
		case "answer_within":
			err = durationArg(d, &c.AnswerWithin)
		case "retry_for":
			err = durationArg(d, &c.RetryFor)
		case "sni":
			var v string
			if err = oneArg(d, &v); err == nil {
				switch v {
				case "on":
				case "off":
					c.DisableSNI = true
				default:
					err = d.Errf("sni must be on or off, got '%s'", v)
				}
			}
		case "binding_key":
			err = oneArg(d, &c.BindingKey)
		case "confirm_only":
			err = flagArg(d, &c.ConfirmOnly)
		default:
			return d.Errf("unrecognized callback subdirective '%s'", name)
		}
		return err
	})
}
