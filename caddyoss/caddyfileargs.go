package caddyoss

import (
	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// eachSubdirective rejects arguments on the block's own line, then calls fn
// for each subdirective of the block, rejecting duplicates of those not in
// repeatable. kind prefixes the duplicate error ("sts ", "callback ").
func eachSubdirective(d *caddyfile.Dispenser, kind string, repeatable map[string]bool, fn func(name string) error) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] && !repeatable[name] {
			return d.Errf("duplicate %ssubdirective '%s'", kind, name)
		}
		seen[name] = true
		if err := fn(name); err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads exactly one argument on the current line.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: missing value", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: unexpected argument '%s'", name, d.Val())
	}
	return nil
}

// flagArg sets a flag that takes no argument.
func flagArg(d *caddyfile.Dispenser, dst *bool) error {
	name := d.Val()
	if d.NextArg() {
		return d.Errf("%s takes no argument, got '%s'", name, d.Val())
	}
	*dst = true
	return nil
}

// wrapErr adds the Caddyfile file and line to err, when there is one.
func wrapErr(d *caddyfile.Dispenser, err error) error {
	if err == nil {
		return nil
	}
	return d.WrapErr(err)
}

// sizeArg reads one size such as 20MB or 20MiB.
func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	name := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n > 1<<62 {
		return d.Errf("%s: invalid size '%s' (use bytes or units such as 20MB or 20MiB)", name, v)
	}
	*dst = int64(n)
	return nil
}

// durationArg reads one duration such as 15m, 1h30m or 7d.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("%s: invalid duration '%s' (use units such as 90s, 15m, 1h or 7d)", name, v)
	}
	*dst = caddy.Duration(dur)
	return nil
}
