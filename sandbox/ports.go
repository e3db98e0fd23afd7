package sandbox

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// checkFree reports whether the site's address can be listened on: bind is
// what Caddy will bind, given what the flag said (for the message). The
// listener is closed at once; Caddy binds the address moments later.
func checkFree(flag, given, bind string) error {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return portError(flag, given, err)
	}
	return ln.Close()
}

// portError turns a failed listen into one line that names the port and
// the flag that chooses it.
func portError(flag, addr string, err error) error {
	host, port, _ := net.SplitHostPort(addr)
	how := "choose another with " + flag
	if n, convErr := strconv.Atoi(port); convErr == nil && n > 0 && n < 65535 {
		how += ", e.g. " + flag + " " + net.JoinHostPort(host, strconv.Itoa(n+1))
	}
	if flag == "--oss-listen" {
		how += " (or port 0 for any free port)"
	}
	if inUse(err) {
		return fmt.Errorf("port %s (%s) is already in use: %s", port, addr, how)
	}
	return fmt.Errorf("cannot listen on port %s (%s): %s: %s", port, addr, strings.TrimSpace(rootCause(err)), how)
}

// inUse reports whether err is a bind to a busy address. Caddy does not
// always wrap the listener's error, so its text is checked too.
func inUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

// rootCause is the innermost error's text, without the "listen tcp …:"
// prefixes that repeat the address.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
