// Command callbackload is the load generator of scripts/bench.sh's callback
// benchmark, and the app the callbacks are delivered to.
//
//	callbackload app -listen 127.0.0.1:18414
//	callbackload run -policy-url http://127.0.0.1:18411/oss/post-policy -oss-addr 127.0.0.1:41234 \
//		-app-url http://127.0.0.1:18414 -caddy-pid 1234 -run r1 -n 2000 -c 200
//
// app answers every POST with {"ok":true} and counts, per object (the
// `object` field of the callback body, form or JSON), how many times it was
// delivered; GET /__bench/counts?prefix=P lists the counts of the objects
// under P.
//
// run makes n PostObject uploads of small unique files through the
// emulator. First it asks Caddy for one post-policy per upload (X-User: the
// run id, so a key_prefix of uploads/{http.request.header.X-User}/ puts
// every object of the run under its own prefix); then, with Caddy's CPU time
// read from /proc/<pid>/stat, c workers post the forms to the emulator,
// whose answer waits for the upload callback. It prints one line of
// space-separated numbers, whose names `callbackload run -header` prints:
// latencies, answers by status, Caddy's CPU time per upload, and how many
// times the app received each stored object. Every address must be on
// loopback, and the run ends within -timeout.
package main

import (
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"strings"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("callbackload: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: callbackload app|run [flags]")
	}
	switch os.Args[1] {
	case "app":
		runApp(os.Args[2:])
	case "run":
		runLoad(os.Args[2:])
	default:
		log.Fatalf("unknown command %q (app or run)", os.Args[1])
	}
}

// loopbackHost reports whether host (no port) is a loopback name or
// address: localhost, *.localhost, or a loopback IP.
func loopbackHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loopbackAddr checks a host:port whose host must be a loopback IP (it is
// dialled as it is).
func loopbackAddr(flagName, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-%s %q: %v", flagName, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-%s %q: not a loopback IP address", flagName, addr)
	}
	return nil
}

// loopbackURL checks an http URL on loopback.
func loopbackURL(flagName, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-%s %q: not an http URL", flagName, raw)
	}
	if !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("-%s %q: not on loopback", flagName, raw)
	}
	return u, nil
}
