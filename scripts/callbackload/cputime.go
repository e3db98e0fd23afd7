package main

// CPU time, read from /proc: per process and per core.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// emuTicks is the emulator's CPU time, or -1 when its pid is not known.
func emuTicks(cfg loadConfig) int64 {
	if cfg.ossemuPID <= 0 {
		return -1
	}
	t, err := procTicks(cfg.ossemuPID)
	if err != nil {
		return -1
	}
	return t
}

// procTicks is utime + stime of a process, in clock ticks: fields 14 and
// 15 of /proc/<pid>/stat, counted after the ")" that ends the command name.
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading Caddy's CPU time: %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: cannot read utime and stime", pid)
	}
	return u + st, nil
}

type cpuTicks struct{ total, idle int64 }

// coreTicks reads every core's total and idle (idle + iowait) ticks from
// /proc/stat, by core number.
func coreTicks() ([]cpuTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	var out []cpuTicks
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n != len(out) {
			continue
		}
		var t cpuTicks
		for i := 1; i <= 8; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			t.total += v
			if i == 4 || i == 5 {
				t.idle += v
			}
		}
		out = append(out, t)
	}
	return out, nil
}
