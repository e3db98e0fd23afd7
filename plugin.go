// Package caddyossplugin lets xcaddy plug in oss_upload by the module path:
//
//	xcaddy build --with github.com/caddy-oss/caddy-oss
//
// The handler itself is in package github.com/caddy-oss/caddy-oss/caddyoss;
// the `caddy oss-sandbox` command, which links the OSS emulator, is in
// package github.com/caddy-oss/caddy-oss/sandbox.
package caddyossplugin

import (
	_ "github.com/caddy-oss/caddy-oss/caddyoss"
	_ "github.com/caddy-oss/caddy-oss/sandbox"
)
