package ossemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// commands are what ServeCommands understands.
var commands = map[string]func(e *Emulator){
	// Every STS credential issued so far expires now: the next request
	// signed with one is refused with SecurityTokenExpired.
	"expire-sessions": (*Emulator).ExpireSessions,
}

// commandAnswer is the JSON line ServeCommands writes for each command.
type commandAnswer struct {
	OK      bool   `json:"ok"`
	Command string `json:"command"`
	Error   string `json:"error,omitempty"`
}

// maxCommandLine bounds one command line.
const maxCommandLine = 4 << 10

// ServeCommands reads control commands from r, one a line, and answers
// each on w with one JSON line once it has taken effect:
// {"ok":true,"command":"expire-sessions"}, or {"ok":false,...,"error":...}
// for a command it does not know. Blank lines are skipped. It returns nil
// when r ends, and an error when r fails, a line is longer than 4 KiB or
// w cannot be written. cmd/ossemu serves it on its standard input, so that
// tests written in other languages can act on a running emulator (for
// example, make STS sessions expire) without a network endpoint.
//
// Commands:
//
//	expire-sessions   every STS credential issued so far expires now
func (e *Emulator) ServeCommands(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxCommandLine)
	enc := json.NewEncoder(w)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		ans := commandAnswer{OK: true, Command: name}
		if run, ok := commands[name]; ok {
			run(e)
			e.logf("ossemu: command %s", name)
		} else {
			ans = commandAnswer{Command: name, Error: fmt.Sprintf("unknown command %q; known: %s", name, knownCommands())}
		}
		if err := enc.Encode(ans); err != nil {
			return fmt.Errorf("ossemu: answering command %q: %w", name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ossemu: reading commands: %w", err)
	}
	return nil
}

func knownCommands() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
