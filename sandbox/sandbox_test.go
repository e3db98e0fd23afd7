package sandbox

import (
	"net"
	"strings"
	"testing"
)

func TestSandboxRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", "192.0.2.1:8080", ":8080", "example.com:80"} {
		if _, err := start(options{Listen: addr}); err == nil || !strings.Contains(err.Error(), "--listen") ||
			!strings.Contains(err.Error(), "loopback") {
			t.Errorf("--listen %s: %v", addr, err)
		}
		if _, err := start(options{Listen: freeAddr(t), OSSListen: addr}); err == nil ||
			!strings.Contains(err.Error(), "--oss-listen") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--oss-listen %s: %v", addr, err)
		}
	}
}

// A busy port fails the command with one line that names the port and the
// flag that moves it.
func TestSandboxBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())

	for _, tc := range []struct{ flag, other string }{{"--listen", "--oss-listen"}, {"--oss-listen", "--listen"}} {
		code, out, err := runCommand(t, tc.flag, busy.Addr().String(), tc.other, freeAddr(t))
		if code == 0 || err == nil {
			t.Fatalf("%s on a busy port: exit %d, %v", tc.flag, code, err)
		}
		msg := err.Error()
		if !oneLine(msg) || !strings.Contains(msg, "port "+port+" ") || !strings.Contains(msg, "already in use") ||
			!strings.Contains(msg, "choose another with "+tc.flag) || strings.Contains(msg, "bind:") {
			t.Errorf("%s on a busy port: %q", tc.flag, msg)
		}
		if out != "" {
			t.Errorf("%s on a busy port printed %q", tc.flag, out)
		}
	}
}
