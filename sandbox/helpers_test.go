package sandbox

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// reverse_proxy, which the sandbox's Caddyfile uses.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// runCommand runs `caddy oss-sandbox` with args up to its return (so only
// with --print-config or a failing start), and returns its exit code, what
// it printed and its error.
func runCommand(t *testing.T, args ...string) (int, string, error) {
	t.Helper()
	cmd := &cobra.Command{}
	addFlags(cmd)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := run(caddycmd.Flags{FlagSet: cmd.Flags()}, &out)
	return code, out.String(), err
}

// freeAddr is a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// client reaches <bucket>.localhost, which Go does not resolve itself, on
// loopback.
var client = &http.Client{Transport: &http.Transport{
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	},
}}

// do sends a request and returns the status, the headers and the body.
func do(t *testing.T, method, url string, header http.Header, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	code, h, b := do(t, http.MethodGet, url, nil, nil)
	return code, h, string(b)
}

func oneLine(s string) bool { return s != "" && !strings.Contains(s, "\n") }
