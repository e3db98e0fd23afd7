package main

// The run command's flags and the configuration they make.

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/url"
	"strings"
	"time"
)

type loadConfig struct {
	policyURL  *url.URL
	ossAddr    string
	appURL     *url.URL
	caddyPID   int
	ossemuPID  int
	clkTck     int
	run        string
	n, c       int
	signConc   int
	size       int
	filename   string
	fileType   string
	settle     time.Duration
	maxSettle  time.Duration
	timeout    time.Duration
	showErrors int
}

func runLoad(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	policyURL := fs.String("policy-url", "", "Caddy's post-policy route, e.g. http://127.0.0.1:18411/oss/post-policy")
	ossAddr := fs.String("oss-addr", "", "the emulator's host:port (a loopback IP); every upload URL is dialled there")
	appURL := fs.String("app-url", "", "the recording app, for its delivery counts")
	cfg := loadConfig{}
	fs.IntVar(&cfg.caddyPID, "caddy-pid", 0, "pid of the Caddy whose CPU time is measured")
	fs.IntVar(&cfg.ossemuPID, "ossemu-pid", 0, "pid of the emulator, to report its CPU time too (optional)")
	fs.IntVar(&cfg.clkTck, "clk-tck", 100, "clock ticks per second of /proc (getconf CLK_TCK)")
	fs.StringVar(&cfg.run, "run", "", "run id: sent as X-User, and the objects' prefix under uploads/")
	fs.IntVar(&cfg.n, "n", 1000, "uploads")
	fs.IntVar(&cfg.c, "c", 100, "concurrent uploads")
	fs.IntVar(&cfg.signConc, "sign-c", 32, "concurrent post-policy requests in the (unmeasured) signing phase")
	fs.IntVar(&cfg.size, "size", 1024, "bytes per upload")
	fs.StringVar(&cfg.filename, "filename", "a.png", "filename sent to the post-policy route")
	fs.StringVar(&cfg.fileType, "type", "image/png", "content type sent to the post-policy route and with the file")
	fs.DurationVar(&cfg.settle, "settle", time.Second, "after the last upload, wait until the app's counts are unchanged this long")
	fs.DurationVar(&cfg.maxSettle, "max-settle", 15*time.Second, "longest wait for late deliveries")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "the whole run ends within this")
	fs.IntVar(&cfg.showErrors, "show-errors", 3, "print this many non-200 answers to stderr")
	printHeader := fs.Bool("header", false, "print the names of the result's fields and exit")
	_ = fs.Parse(args)
	if *printHeader {
		fmt.Println(header)
		return
	}
	var err error
	if cfg.policyURL, err = loopbackURL("policy-url", *policyURL); err != nil {
		log.Fatal(err)
	}
	if cfg.appURL, err = loopbackURL("app-url", *appURL); err != nil {
		log.Fatal(err)
	}
	if err = loopbackAddr("oss-addr", *ossAddr); err != nil {
		log.Fatal(err)
	}
	cfg.ossAddr = *ossAddr
	switch {
	case cfg.caddyPID <= 0:
		log.Fatal("-caddy-pid is required")
	case cfg.run == "" || strings.ContainsAny(cfg.run, "/?#&% "):
		log.Fatal("-run must be a plain word")
	case cfg.n < 1 || cfg.c < 1 || cfg.signConc < 1 || cfg.size < 1 || cfg.clkTck < 1:
		log.Fatal("-n, -c, -sign-c, -size and -clk-tck must be positive")
	}
	if _, err := procTicks(cfg.caddyPID); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	res, err := load(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.line())
}
