package ossemu

import (
	"sync"
	"time"
)

// credential is an access key the emulator accepts: a long-term key from
// Config.AccessKeys, or a temporary one issued by AssumeRole.
type credential struct {
	ID     string
	Secret string

	// Token is the STS security token; empty for long-term keys.
	Token string

	// Expires is when a temporary credential stops working; zero for
	// long-term keys.
	Expires time.Time

	// Policy is the inline session policy of an STS credential; nil means
	// no restriction beyond the emulator's (long-term keys may do anything).
	Policy *sessionPolicy

	// RoleARN and SessionName identify the assumed role session.
	RoleARN     string
	SessionName string
}

// temporary reports whether c was issued by STS.
func (c *credential) temporary() bool { return c.Token != "" }

// credentialStore holds every credential the emulator knows, keyed by ID.
type credentialStore struct {
	mu   sync.RWMutex
	byID map[string]*credential
}

func newCredentialStore() *credentialStore {
	return &credentialStore{byID: make(map[string]*credential)}
}

func (s *credentialStore) add(c *credential) {
	s.mu.Lock()
	s.byID[c.ID] = c
	s.mu.Unlock()
}

// lookup returns the credential with the given ID, or nil.
func (s *credentialStore) lookup(id string) *credential {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}
