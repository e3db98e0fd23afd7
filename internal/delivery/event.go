package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// State is where an event stands.
type State string

// The states of an event.
const (
	// Received: verified and recorded, owed to the app (queued or in flight).
	Received State = "received"
	// Delivered: the app answered 2xx. Copies are answered as duplicates.
	Delivered State = "delivered"
	// Refused: the app answered a 4xx that retrying cannot change. Copies
	// get the app's answer again.
	Refused State = "refused"
	// Dead: not delivered within RetryFor; kept for operators.
	Dead State = "dead"
)

// MaxAnswer bounds the app's answer kept with a refused event.
const MaxAnswer = 64 << 10

// maxIDLen bounds an event id: it is a storage key component.
const maxIDLen = 128

// Event is the durable record of one upload event. It is stored as JSON.
type Event struct {
	// ID names the event; the caller derives it from what identifies the
	// upload. It is also the Idempotency-Key the app receives. Letters,
	// digits, '-' and '_' only, at most 128 characters.
	ID string `json:"id"`
	// Body is what is delivered: the body OSS signed.
	Body []byte `json:"body"`
	// Header holds the headers delivered with Body, as the caller chose them.
	Header map[string]string `json:"header,omitempty"`
	// Object is the object key, for logs.
	Object string `json:"object,omitempty"`
	// Created is when the event was first recorded.
	Created time.Time `json:"created"`
	// Redelivered is when an operator last put the dead event back in the
	// queue (zero: never). RetryFor counts from the later of Created and
	// Redelivered.
	Redelivered time.Time `json:"redelivered,omitzero"`
	// Expires is how long the record must at least be kept: until then a
	// copy of the event is recognized.
	Expires time.Time `json:"expires"`
	// State is where the event stands.
	State State `json:"state"`
	// Attempts counts the attempts made so far.
	Attempts int `json:"attempts"`
	// NextAt is when the next attempt is due (received events).
	NextAt time.Time `json:"next_at"`
	// Lease, while in the future, reserves the event for Owner's attempt;
	// nobody else attempts it meanwhile.
	Lease time.Time `json:"lease"`
	// Owner is the instance holding the lease.
	Owner string `json:"owner,omitempty"`
	// Status is the last status the app answered (0: none).
	Status int `json:"status,omitempty"`
	// LastError is the text of the last transport error.
	LastError string `json:"last_error,omitempty"`
	// Answer is the app's answer body to a refused event (at most
	// MaxAnswer bytes), to give a copy the same answer.
	Answer []byte `json:"answer,omitempty"`
}

// errCorrupt marks a stored value that is not a record for the key it is at.
var errCorrupt = errors.New("not an event record")

// inWriting reports whether a listed name whose content is not its event's
// record (err, from decode) is the temporary file of a record being
// written: certmagic's FileStorage writes each record through a file in
// the same folder named by digits alone, and renames it into place, so a
// List may meet it, holding another record or part of one. Such a name is
// skipped; the record is listed under its own name.
func inWriting(name string, err error) bool {
	if !errors.Is(err, errCorrupt) || name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}

// checkID reports whether id can name an event.
func checkID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("delivery: event id must have 1 to %d characters", maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
		default:
			return fmt.Errorf("delivery: event id %q has a character other than letters, digits, '-' and '_'", id)
		}
	}
	return nil
}

// encode serializes a record.
func encode(ev *Event) ([]byte, error) {
	return json.Marshal(ev)
}

// decode parses the record stored for id, accepting only the given states
// (the states that belong where it was found).
func decode(b []byte, id string, states ...State) (*Event, error) {
	ev := new(Event)
	if err := json.Unmarshal(b, ev); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if ev.ID != id {
		return nil, fmt.Errorf("%w: id %q where %q was expected", errCorrupt, ev.ID, id)
	}
	for _, s := range states {
		if ev.State == s {
			return ev, nil
		}
	}
	return nil, fmt.Errorf("%w: state %q where %v was expected", errCorrupt, ev.State, states)
}

// boundAnswer keeps at most MaxAnswer bytes of an answer, in a copy.
func boundAnswer(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b[:min(len(b), MaxAnswer)]...)
}

// errText is err's text, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
