package quota

import (
	"context"
	"os"
	"path/filepath"

	"github.com/caddyserver/certmagic"
)

// quickFileWriter writes a record in fs as fs.Store does (in the key's
// folder, made 0700 when missing: a temporary file, 0600, put in the
// record's place), but without fsync, so that it costs no disk wait: the
// record is replaced at once for every process (a rename is atomic and
// visible without fsync), and reaches the disk later, when the kernel
// writes it back (a record rewritten meanwhile mostly never does). A
// machine crash (power loss, a kernel panic; not a process's) may thus
// leave the record as it was before its last writes, or cut short, or
// empty: see Ledger.quick for what it is used for, and readRecords for how
// a record cut short is read.
//
// The new file takes the record's place by exchanging the two names where
// the file system can (Linux): renaming over a record would have ext4 write
// the new file's blocks out at once (auto_da_alloc), which costs about as
// much CPU as the fsync saved.
func quickFileWriter(fs *certmagic.FileStorage) func(context.Context, string, []byte) error {
	replace := replacer()
	return func(_ context.Context, key string, value []byte) error {
		name := fs.Filename(key)
		dir := filepath.Dir(name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		f, err := os.CreateTemp(dir, "")
		if err != nil {
			return err
		}
		tmp := f.Name()
		err = f.Chmod(0o600)
		if err == nil {
			_, err = f.Write(value)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = replace(tmp, name)
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
		return err
	}
}
