package quota

import (
	"errors"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// replacer puts the file tmp in name's place: it exchanges the two names
// and removes tmp, which then holds the old file, or renames tmp to name
// when name does not exist yet or the file system cannot exchange names
// (it is then not asked again).
func replacer() func(tmp, name string) error {
	var noExchange atomic.Bool
	return func(tmp, name string) error {
		if !noExchange.Load() {
			err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, name, unix.RENAME_EXCHANGE)
			switch {
			case err == nil:
				return os.Remove(tmp)
			case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
				noExchange.Store(true)
			case !errors.Is(err, unix.ENOENT):
				return &os.LinkError{Op: "renameat2", Old: tmp, New: name, Err: err}
			}
		}
		return os.Rename(tmp, name)
	}
}
