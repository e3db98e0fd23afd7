//go:build !linux

package quota

import "os"

// replacer renames the file tmp over name.
func replacer() func(tmp, name string) error { return os.Rename }
