// Command ossemu runs the OSS + STS emulator on loopback for tests written
// in other languages and for trying a Caddyfile of your own against it. It
// prints one JSON line describing itself, then serves until interrupted or
// until its standard input closes; with -exit-on-stdin-close, lines on
// standard input are commands such as expire-sessions (see
// ossemu.ServeCommands).
//
//	go run ./cmd/ossemu -bucket examplebucket -key ak:sk -role acs:ram::1234567890123456:role/uploader
//
// With -print-caddyfile (or -caddyfile <file>) it also writes the
// emulator's callback public key to a file and prints, to standard error
// (or writes to the file), the oss_upload block a Caddyfile needs to use
// it; see caddyfile.go.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "ossemu:", err)
		os.Exit(1)
	}
}

// run is the command: it serves until ctx ends (or, with
// -exit-on-stdin-close, until stdin does), then stops the emulator and
// removes what it wrote to a temporary directory.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var buckets, keys, roles listFlag
	fs := flag.NewFlagSet("ossemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	region := fs.String("region", "cn-hangzhou", "region of the buckets")
	verbose := fs.Bool("v", false, "log every request to stderr")
	stdinExit := fs.Bool("exit-on-stdin-close", false, "stop when standard input closes; lines on it are commands, answered with one JSON line each (see ossemu.ServeCommands)")
	printCaddyfile := fs.Bool("print-caddyfile", false, "print to stderr the oss_upload block a Caddyfile needs to use this emulator (first -bucket, -key and -role)")
	caddyfileOut := fs.String("caddyfile", "", "write that oss_upload block to this file (for `import <file>` in a site)")
	stateDir := fs.String("state-dir", "", "directory to write the callback public key to, kept (default: a temporary directory, removed on exit)")
	refusePrivate := fs.Bool("refuse-private-callbacks", false, "refuse callbacks to loopback and private addresses, as OSS does (the uploader gets 203 CallbackFailed)")
	callbackURL := fs.String("callback-url", defaultCallbackURL, "the callback url in the printed block: your site's callback route, which the emulator posts to")
	fs.Var(&buckets, "bucket", "bucket to create (repeatable)")
	fs.Var(&keys, "key", "permanent access key as id:secret (repeatable)")
	fs.Var(&roles, "role", "RAM role ARN AssumeRole may assume, max session 12h (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	opts := ossemu.Options{Region: *region, Buckets: buckets, AccessKeys: map[string]string{}, RefusePrivateCallbacks: *refusePrivate}
	var firstKey [2]string
	for _, k := range keys {
		id, secret, ok := strings.Cut(k, ":")
		if !ok || id == "" || secret == "" {
			return fmt.Errorf("-key %q is not id:secret", k)
		}
		opts.AccessKeys[id] = secret
		if firstKey[0] == "" {
			firstKey = [2]string{id, secret}
		}
	}
	for _, r := range roles {
		opts.Roles = append(opts.Roles, ossemu.Role{ARN: r, MaxSessionDuration: 12 * time.Hour})
	}
	snippet := *printCaddyfile || *caddyfileOut != ""
	if snippet && (len(buckets) == 0 || firstKey[0] == "") {
		return errors.New("-print-caddyfile and -caddyfile need a -bucket and a -key for oss_upload to use")
	}
	if *verbose {
		opts.Logf = log.New(stderr, "", log.LstdFlags).Printf
	}
	emu, err := ossemu.New(opts)
	if err != nil {
		return err
	}
	if err := emu.Listen(*listen); err != nil {
		return err
	}
	defer func() { _ = emu.Close() }()

	if snippet {
		keyFile, cleanup, err := writeCallbackKey(emu.CallbackPublicKeyPEM(), *stateDir)
		if err != nil {
			return err
		}
		defer cleanup()
		var role string
		if len(roles) > 0 {
			role = roles[0]
		}
		text, err := caddyfileSnippet(snippetParams{
			Addr: emu.Addr(), Bucket: buckets[0], Region: emu.Region(),
			Endpoint: emu.Endpoint(), UploadURL: emu.BucketURL(buckets[0]), STSEndpoint: emu.STSEndpoint(),
			AccessKeyID: firstKey[0], AccessKeySecret: firstKey[1], RoleARN: role,
			CallbackURL: *callbackURL, KeyFile: keyFile,
		})
		if err != nil {
			return err
		}
		if *caddyfileOut != "" {
			if err := os.WriteFile(*caddyfileOut, []byte(text), 0o600); err != nil {
				return err
			}
		}
		if *printCaddyfile {
			if _, err := io.WriteString(stderr, text); err != nil {
				return err
			}
		}
	}

	// The JSON line comes last, once everything it names is in place:
	// harnesses start using the emulator when they read it.
	info, _ := json.Marshal(map[string]string{
		"endpoint":        emu.Endpoint(),
		"stsEndpoint":     emu.STSEndpoint(),
		"addr":            emu.Addr(),
		"region":          emu.Region(),
		"callbackKeyPEM":  string(emu.CallbackPublicKeyPEM()),
		"callbackKeyPath": ossemu.CallbackPublicKeyPath,
	})
	if _, err := fmt.Fprintln(stdout, string(info)); err != nil {
		return err
	}

	done := ctx.Done()
	if *stdinExit {
		stdinDone := make(chan struct{})
		go func() {
			defer close(stdinDone)
			if err := emu.ServeCommands(stdin, stdout); err != nil {
				fmt.Fprintln(stderr, "ossemu:", err)
			}
		}()
		select {
		case <-done:
		case <-stdinDone:
		}
		return nil
	}
	<-done
	return nil
}
