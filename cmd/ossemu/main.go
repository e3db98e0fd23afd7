// Command ossemu runs the OSS + STS emulator on loopback for tests written
// in other languages. It prints one JSON line describing itself, then
// serves until interrupted or until its standard input closes; with
// -exit-on-stdin-close, lines on standard input are commands such as
// expire-sessions (see ossemu.ServeCommands).
//
//	go run ./cmd/ossemu -bucket examplebucket -key ak:sk -role acs:ram::1234567890123456:role/uploader
package main

import (
	"encoding/json"
	"flag"
	"fmt"
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
	var buckets, keys, roles listFlag
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	region := flag.String("region", "cn-hangzhou", "region of the buckets")
	verbose := flag.Bool("v", false, "log every request to stderr")
	stdinExit := flag.Bool("exit-on-stdin-close", false, "stop when standard input closes; lines on it are commands, answered with one JSON line each (see ossemu.ServeCommands)")
	flag.Var(&buckets, "bucket", "bucket to create (repeatable)")
	flag.Var(&keys, "key", "permanent access key as id:secret (repeatable)")
	flag.Var(&roles, "role", "RAM role ARN AssumeRole may assume, max session 12h (repeatable)")
	flag.Parse()

	opts := ossemu.Options{Region: *region, Buckets: buckets, AccessKeys: map[string]string{}}
	for _, k := range keys {
		id, secret, ok := strings.Cut(k, ":")
		if !ok || id == "" || secret == "" {
			log.Fatalf("ossemu: -key %q is not id:secret", k)
		}
		opts.AccessKeys[id] = secret
	}
	for _, r := range roles {
		opts.Roles = append(opts.Roles, ossemu.Role{ARN: r, MaxSessionDuration: 12 * time.Hour})
	}
	if *verbose {
		opts.Logf = log.Printf
	}
	emu, err := ossemu.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	if err := emu.Listen(*listen); err != nil {
		log.Fatal(err)
	}
	info, _ := json.Marshal(map[string]string{
		"endpoint":        emu.Endpoint(),
		"stsEndpoint":     emu.STSEndpoint(),
		"addr":            emu.Addr(),
		"region":          emu.Region(),
		"callbackKeyPEM":  string(emu.CallbackPublicKeyPEM()),
		"callbackKeyPath": ossemu.CallbackPublicKeyPath,
	})
	fmt.Println(string(info))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	if *stdinExit {
		go func() {
			if err := emu.ServeCommands(os.Stdin, os.Stdout); err != nil {
				log.Print(err)
			}
			stop <- syscall.SIGTERM
		}()
	}
	<-stop
	_ = emu.Close()
}
