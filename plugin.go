// Package caddyossplugin lets xcaddy plug in oss_upload by the module path:
//
//	xcaddy build --with github.com/caddy-oss/caddy-oss
//
// It links the handler (package github.com/caddy-oss/caddy-oss/caddyoss)
// and nothing else: the `caddy oss-sandbox` command, which links the OSS
// emulator and a demo app, is package
// github.com/caddy-oss/caddy-oss/sandbox, for builds that ask for it:
//
//	xcaddy build --with github.com/caddy-oss/caddy-oss --with github.com/caddy-oss/caddy-oss/sandbox
package caddyossplugin

import (
	_ "github.com/caddy-oss/caddy-oss/caddyoss"
)
