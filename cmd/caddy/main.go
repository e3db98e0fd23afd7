// Command caddy is Caddy with its standard modules, the oss_upload plugin
// and the `caddy oss-sandbox` command, so `go run ./cmd/caddy …` works
// without xcaddy.
package main

import (
	_ "time/tzdata"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-oss/caddy-oss/caddyoss"
	_ "github.com/caddy-oss/caddy-oss/sandbox"
)

func main() {
	caddycmd.Main()
}
