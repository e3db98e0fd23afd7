// Package quota keeps per-key upload quotas (a key is whose quota: a
// user id, an expanded key prefix) in a certmagic.Storage, so that every
// instance sharing the storage enforces one quota per key.
//
// # What counts
//
// A Ledger has three limits (Config; 0 is none): Bytes and Uploads per
// Window, and Pending, the reservations live at once. A signing route
// reserves what its signature allows (Reserve: one upload of up to n
// bytes, until the signature expires); the reservation counts one pending,
// one upload and its bytes. When the upload is verified, Settle replaces
// the reservation with the object's real size; a reservation nobody
// settles lapses at its expiry (rounded up to a whole second). An upload
// settled without a live reservation (STS uploads after the first of a
// credential, an expired signature, a policy used twice) is charged only if
// it fits, else refused and not charged: the caller deletes the object.
//
// The window slides: a settled upload counts from its settlement for at
// least Window and at most Window plus a slot (Window/Slots, whole
// seconds), because uploads are counted by slot: a writer keeps at most
// Slots+1 charge entries per key, not one per upload. No span of Window
// thus ever holds more than the limits, where a fixed window would allow
// twice the limit across its boundary, and a refusal's RetryAt (when
// enough reservations expire and uploads leave the window) is exact to the
// second. Reset forgives the settled uploads of a key (live reservations
// stay, until settled or expired).
//
// # What ties a callback to its signing
//
// Reserve returns a Reservation whose ID ([0-9a-z.], at most 64 bytes)
// spells the record holding it, a tag of the key, its expiry and bytes,
// and a sequence number. The signing route issues it as a custom callback
// variable (say x:oss_quota) next to the quota key (say x:oss_quota_key,
// for the callback route, which has no user to expand): the callback
// binding's MAC covers every issued variable and the expiry, so the
// callback route can trust both when it calls Settle(key, id, size), after
// its event's fresh claim (one settlement per upload; the delivery
// package's claim already ensures it). Settle trusts what the id spells
// (it never verifies a MAC of its own), and an id under another key than
// its own is no reservation there. STS credentials reserve max_size for
// their lifetime and pin the id in the STS route's binding: the first
// upload settled with it replaces the reservation, later ones are charged
// on their own.
//
// # Storage layout
//
// Below Config.Prefix (for example "oss_upload/quota/<handler-id>"), each
// key has a folder named by a digest of the key, and in it one record per
// writer, written by that writer alone:
//
//	<Prefix>/<sha256(key)[:16] in hex>/<writer>
//
// A writer is one Ledger's record of one key (a Ledger keeps two per key on
// the file system: see below). Its name is "w", six characters naming the
// Ledger and six naming the record (see id.go); a record is a few lines of
// text: the time it was written, its claims (reservations by expiry second:
// bytes and count), charges and Reset credits (by the second they leave the
// window) and the reservations it settled, of any writer, grouped by the
// claim entry they release (see record.go). Every entry carries the second
// it stops counting at, so a record needs no clean-up to be read right; a
// writer drops what expired each time it writes, deletes its record when
// nothing in it counts any more, and leaves a record for a new name when
// its last write is half an hour old (renew). Readers delete another
// writer's record once nothing in it counts and its last write is an hour
// old, and Purge (hourly, in Run) does so below the whole prefix, for the
// keys nobody reads any more: a writer never writes a name it left, and
// writes a name only within half an hour of its last write, so a delete
// never meets a write, as long as clocks differ and writes stall by less
// than half an hour. Usage counts every writer's records: reservations net
// of the settlements of them (each counted once, however many writers
// settled it), charges net of credits.
//
// # Reservations on the file system
//
// On the file system (a *certmagic.FileStorage), a Ledger keeps two records
// of a key, each a writer of its own to readers: one of its reservations
// alone, and one of its charges, credits and settlements. The second is
// written with Store, which syncs the file before renaming it into place.
// The first is written as Store writes (a temporary file in the key's
// folder, 0600, in folders 0700, put in the record's place) but without
// fsync (quickFileWriter): a round that only reserves waits for no disk,
// and the record is replaced at once for every process (a rename is atomic
// and seen without fsync), so the bound below holds as with Store.
//
// What a machine crash (a power loss, a kernel panic; not a process's crash
// or exit, whose writes the kernel still holds) can cost is reservations: a
// record of reservations reaches the disk when the kernel writes it back
// (within about 30 s on Linux; one replaced more often may never have), so
// after the crash it may hold older reservations, be cut short or empty, or
// be missing. The reservations it lost no longer count and their room may
// be granted again, although the uploads they signed are still allowed by
// their signatures: an upload signed with one is charged on its own at
// verification if it still fits, else refused (and deleted by the caller),
// as any upload without a live reservation. Settled uploads and Reset
// credits are not in that record: settled usage still never exceeds the
// limits (as far as Store keeps what it wrote). A record cut short (empty,
// or without the newline that ends every record) is what only such a crash
// leaves, so a Ledger that writes without fsync reads one as holding
// nothing and deletes it an hour after it was last modified, as a dead
// writer's; on other storages, where every write is a Store, a record cut
// short is unreadable. A crash may also leave temporary files, which
// readers skip, as it may after any Store. Other storages keep one record
// per Ledger and key, written with Store.
//
// # Rounds and the bound
//
// A Ledger decides the calls for one key in rounds: while a round runs, the
// calls that arrive queue, and the next round decides them all with one
// write of each own record they change (the caller that finds no round
// running leads one itself). A round decides its calls in order against the
// other writers' records (as last read; read afresh to settle, and before
// any refusal), writes its own records, reads the others again, and
// confirms its grants against what they hold then: all at once when
// everything fits, else one by one in order, withdrawing (by writing again)
// what no longer fits.
//
// The bound: what a key's calls are granted never exceeds its limits,
// however many instances grant at once: there is no overshoot at all,
// stronger than the "one reservation per instance" a read-then-write
// design allows. Every grant is written before the read that confirms
// it, so of two rounds granting at once, the one whose confirming read
// comes later sees the other's grants, and the last confirming read of all
// saw every grant that stands; each step of a confirmation either fits the
// limits with everything that read saw or gives back more than it takes (a
// settlement replacing its reservation, released at its own place in the
// round). Two rounds that each see the other's claims may both withdraw:
// concurrent requests for a key's last room can be refused although one
// of them would fit (they are told to retry when the room frees), never
// both granted. TestSimultaneousLastRoom shows this interleaving,
// TestClusterReservesNeverExceed and TestClusterReservesAndSettles assert
// the bound with two instances on the file system and on a real
// redis-server, and TestLedgerMatchesModel checks every answer against a
// plain model of the ledger.
//
// The bound assumes what certmagic's storages provide: a List and a Load
// that begin after a Store (or the file system's write without fsync)
// returned see it (the file system; Redis; not an eventually consistent
// object store). The file system's List also fails with fs.ErrNotExist when
// a temporary file vanishes while it walks the folder: that is read as "no
// such folder" only when the folder is indeed missing. Each instance
// decides with its own limits, so instances should share them, and with its
// own clock: expiries and windows end by each instance's clock.
//
// # Failures
//
// A storage failure (a failed write without fsync as a failed Store) fails
// the round's calls with an error naming the operation and the storage key
// (never a refusal, never a grant): a signing route answers 503, and so
// does a callback route, which then keeps the object and does not tell the
// app (see caddyoss/quotasettle.go). Nothing granted is taken back from
// storage and nothing not granted stays: a write that fails, or whose
// confirming read fails, is taken back in memory and written again (at
// once, at the next round, or by Sweep). Settlements of reservations and
// Reset credits are never taken back once tried (another instance may have
// seen them): a failed Settle may have used up its reservation, a failed
// Reset may still take effect. A record that cannot be read fails the
// reading; it is never taken for empty (except a record cut short by a
// machine crash where records of reservations are written without fsync,
// above). A settled charge is in storage when Settle returns nil, and stays
// there until it leaves the window (or is forgiven by Reset).
//
// # Costs
//
// A round costs a write of each own record it changed (one, mostly) and
// one or two readings (a List of the key's folder and a Load of each other
// writer's record, whose decoding is reused while it does not change). On
// Redis a write is two commands and a reading one plus one per other
// record. On the file system a write is a file created, written and put
// in the record's place, synced first only for settlements and credits: a
// round that only reserves waits for no disk, and costs the kernel's work
// of creating, renaming and listing files. BenchmarkReserve's 64 callers
// of 64 keys (a round each) cost 34–46 µs of CPU per Reserve on an ext4
// with a journal, against 120–140 µs and 0.6 ms of wall time with every
// record synced (file_system_synced), and 100–140 µs against 280–330 µs
// on an ext4 without a journal, where creating a file scans the inodes
// deleted in the last half minute.
//
// Calls for one key arriving together share a round: 64 callers of one key
// were decided with 0.02–0.03 writes per Reserve. The caller that leads a
// round yields once before it takes its batch, so that the callers
// already runnable queue behind it first: with one P (GOMAXPROCS 1) a
// round holds it for its storage calls, and without the yield requests
// arriving from the network each led a round of their own
// (BenchmarkSigningOneUser at -cpu 1 on the file system: one write per
// request without it, 0.04 with it; with every record synced, 0.6–1
// against 0.04, and 0.4–0.6 ms per request against 0.11). A round's work
// is proportional to the key's records: one claim entry per expiry second
// of live reservations, one charge entry per slot, and the reservations
// settled within a reservation lifetime (at most Config.Uploads, when
// set). Reserve and Settle for distinct keys cost a round each.
// BenchmarkReserve, BenchmarkSigningOneUser and BenchmarkSettle measure
// these.
//
// # Integration
//
// The oss_upload handler (caddyoss/quota.go, quotareserve.go and
// quotasettle.go) builds one Ledger per handler, below
// "oss_upload/quota/<handler id>" in Caddy's storage, and runs Run until
// its config is unloaded. Each signing route reserves before it signs and
// answers a *Refusal with 429 and Retry-After; it issues the
// reservation's ID and the key as the callback variables oss_quota and
// oss_quota_key, which the callback binding's MAC covers. The callback
// and confirm routes call Settle with them and the size OSS stores, after
// the upload's event was claimed fresh; an upload refused there is
// deleted. Operators read and reset a key with Usage and Reset through
// Caddy's admin API.
package quota
