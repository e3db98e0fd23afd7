// Package caddyossplugin lets xcaddy plug in oss_upload by the module path:
//
//	xcaddy build --with github.com/caddy-oss/caddy-oss
//
// The handler itself is in package github.com/caddy-oss/caddy-oss/caddyoss.
package caddyossplugin

import (
	_ "github.com/caddy-oss/caddy-oss/caddyoss"
)
