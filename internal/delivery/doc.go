// Package delivery keeps the durable record of an upload event (a verified
// OSS upload callback) and delivers it to the site's app.
//
// One record per event is at once the replay claim (a copy of the callback
// finds it and is not delivered again) and the queue entry (the event is
// owed to the app until the app takes or refuses it). Records live in a
// certmagic.Storage, so every instance sharing that storage shares them.
//
// # Storage layout
//
// All keys are below a per-handler namespace Prefix (for example
// "oss_upload/events/<handler-id>"):
//
//	<Prefix>/pending/<id>        received: owed to the app (queued or in flight)
//	<Prefix>/done/<hour>/<id>    delivered (the app's 2xx) or refused (its own 4xx)
//	<Prefix>/dead/<hour>/<id>    not delivered within RetryFor, kept for operators
//
// <hour> is a group name: the Unix seconds of a whole UTC hour. A done
// record goes in the group of its event's Expires rounded up to the hour, so
// it is kept at least until Expires; once that hour has passed, the whole
// group is removed with one Storage.Delete of the group's key (certmagic's
// Storage contract: deleting a directory deletes every key below it). A dead
// record goes in the group of the later of its Expires and the moment it was
// given up, rounded up to the hour, and that group is removed KeepDead after
// its hour. Purging therefore costs one List of the group names and one
// Delete per expired group; it never lists or reads the records themselves.
//
// Records kept are thus bounded: pending records by the events of the last
// RetryFor, done records by the events whose Expires (rounded up to the hour)
// is still ahead, dead records by those given up within KeepDead of their
// hour. Pending records are never purged: they are owed until delivered,
// refused or given up.
//
// Some storage back ends delete only the named key and leave the keys below
// a directory in place. A Queue finds this out once, with a probe record, and
// then purges each expired group by listing it and deleting its records one
// by one before the group itself: each record is still deleted once, and
// only records of expired groups are listed.
//
// # Claims, leases and retries
//
// Claim looks the event's id up and records a fresh event, under a storage
// lock named after Prefix and the id, so concurrent copies on any instance
// see exactly one fresh claim. The fresh record carries a lease for the
// caller's own first attempt; Settle records its outcome. Begin is the
// cheaper form for a caller that attempts at once: it holds the event's
// lock through the first attempt instead of writing a record, and Settle
// then writes the one record the outcome needs (done when the app took
// or refused the event, pending when it is left to Run). Run delivers what
// is still owed: for each due event it takes the event's lock, reloads the
// record, skips it while another holder's lease is in the future, else writes
// its own lease, releases the lock and makes one attempt whose deadline is
// half the lease. A lease therefore outlives any attempt, and an instance
// that stops leaves its events to others once their leases pass.
//
// A storage failure is never read as "not found" or "settled": the event
// stays owed, is tried again with backoff, and the failure is logged with its
// cause.
//
// # Outcomes
//
// Config.OnSettle hears of each outcome recorded (delivered, refused,
// dead) once, from the queue whose write recorded it, after that write and
// outside the event's lock: an outcome storage refused is reported when a
// later try writes it, and copies, clean-ups and other queues sharing the
// storage report nothing more. An outcome is written, and reported, twice
// only where the event was sent to the app twice: an attempt that outlived
// its lease, or an outcome kept in memory (storage refused it) while
// another instance took the event over.
//
// # Dead letters
//
// Operators list the pending and dead events (List), look one up in any
// state (Find), and act on dead ones: Redeliver (or RedeliverDead for all)
// writes the event's pending record again, due now, with the same id and a
// fresh RetryFor window counted from its Redelivered time, then deletes
// its dead record; Drop deletes a dead event for good. Both run under the
// event's storage lock and write before they delete. A redelivery whose
// delete failed leaves a dead record older than the pending one (by
// Redelivered): Run recognizes it and deletes it instead of taking the
// event for settled. Every running queue finds a redelivered event at its
// next scan; a Queue built with Open does these actions without
// delivering. Each scan also counts the dead records (Dead).
package delivery
