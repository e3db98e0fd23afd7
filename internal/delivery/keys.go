package delivery

import (
	"strconv"
	"strings"
	"time"
)

// Folder names below Prefix.
const (
	pendingDir = "pending"
	doneDir    = "done"
	deadDir    = "dead"
	probeDir   = "probe"
)

// hourCeil is t rounded up to a whole hour, as Unix seconds: the name of
// the group a record expiring at t goes in. The group's hour is never
// before t.
func hourCeil(t time.Time) int64 {
	u := t.Unix()
	if t.Nanosecond() > 0 {
		u++
	}
	return (u + 3599) / 3600 * 3600
}

// groupsFor lists the groups a record expiring at first, or at one of also,
// can be in, without repeats, first's group first.
func groupsFor(first time.Time, also []time.Time) []int64 {
	gs := []int64{hourCeil(first)}
	for _, t := range also {
		g := hourCeil(t)
		seen := false
		for _, x := range gs {
			seen = seen || x == g
		}
		if !seen {
			gs = append(gs, g)
		}
	}
	return gs
}

func (q *Queue) dir(name string) string { return q.prefix + "/" + name }

func (q *Queue) pendingKey(id string) string { return q.prefix + "/" + pendingDir + "/" + id }

func (q *Queue) groupKey(dir string, group int64) string {
	return q.prefix + "/" + dir + "/" + strconv.FormatInt(group, 10)
}

func (q *Queue) doneKey(id string, group int64) string { return q.groupKey(doneDir, group) + "/" + id }

func (q *Queue) deadKey(id string, group int64) string { return q.groupKey(deadDir, group) + "/" + id }

// lockName names the storage lock that serializes the claims and lease
// takings of one event. Storage back ends turn lock names into file names
// or keys of their own; '/' is spelled '.' so that the name keeps the
// boundaries between its parts where a back end drops '/'.
func (q *Queue) lockName(id string) string {
	return "oss_upload.event." + strings.ReplaceAll(q.prefix, "/", ".") + "." + id
}
