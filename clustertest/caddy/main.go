// Command caddy is Caddy with the standard modules, oss_upload and
// caddy-storage-redis: the binary the cluster tests run as separate
// processes. The plugin itself never links a storage module.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/pberkel/caddy-storage-redis"

	_ "github.com/caddy-oss/caddy-oss/clustertest/faultstore"

	_ "github.com/caddy-oss/caddy-oss/caddyoss"
)

func main() { caddycmd.Main() }
