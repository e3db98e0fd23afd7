package quota

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strconv"
	"strings"
)

// A writer is one Ledger's record of one key: it alone writes it. Its
// name is "w", 6 characters naming the Ledger and 6 naming the record,
// each of [a-z2-7] (30 random bits each), so that it cannot be mistaken
// for the temporary files some storages (the file system's atomic writes)
// keep next to a record while writing it. A Ledger gives a key's record a
// new name each time it starts one (see keyState.writer), and never writes
// a name again once it left it.
const writerLen = 13

var writerEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomName is n characters of [a-z2-7].
func randomName(n int) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return writerEncoding.EncodeToString(b[:])[:n]
}

func validWriter(s string) bool {
	if len(s) != writerLen || s[0] != 'w' {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// resID identifies a reservation and spells what Settle needs of it: the
// writer whose record holds it, a tag of its key (so that an id settled
// under another key is no reservation there), its expiry (the whole second
// its claim is recorded under) and its bytes, plus the writer's sequence
// number that makes it unique.
type resID struct {
	writer string
	tag    uint32 // keyTag of the key
	expiry int64  // Unix seconds
	bytes  int64
	seq    uint64
}

// ErrMalformedID is a reservation id Settle cannot read.
var ErrMalformedID = errors.New("quota: malformed reservation id")

// String is the id's one spelling: the writer, then the key's tag, the
// expiry, bytes and sequence number in base 36, separated by dots.
func (r resID) String() string {
	var buf [64]byte
	b := append(buf[:0], r.writer...)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(r.tag), 36)
	b = append(b, '.')
	b = strconv.AppendInt(b, r.expiry, 36)
	b = append(b, '.')
	b = strconv.AppendInt(b, r.bytes, 36)
	b = append(b, '.')
	b = strconv.AppendUint(b, r.seq, 36)
	return string(b)
}

// parseID reads an id in its one spelling only (no signs, leading zeros or
// upper case), so that one reservation has one id.
func parseID(s string) (resID, error) {
	parts := strings.Split(s, ".")
	if len(s) > 64 || len(parts) != 5 || !validWriter(parts[0]) {
		return resID{}, ErrMalformedID
	}
	var nums [4]uint64
	for i, p := range parts[1:] {
		bits := 63
		if i == 0 {
			bits = 32
		}
		n, err := strconv.ParseUint(p, 36, bits)
		if err != nil || strconv.FormatUint(n, 36) != p {
			return resID{}, ErrMalformedID
		}
		nums[i] = n
	}
	return resID{writer: parts[0], tag: uint32(nums[0]), expiry: int64(nums[1]), bytes: int64(nums[2]), seq: nums[3]}, nil
}
