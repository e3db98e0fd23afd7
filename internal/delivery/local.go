package delivery

import "sync"

// processLocks are the event locks of every queue in this process, by
// storage lock name: after a config reload the old and the new handler's
// queues share them.
var processLocks localLocks

// localLocks serializes, inside one process, the callers that take the
// storage lock of one event, so that copies arriving together wait on a
// channel instead of polling the storage lock (Caddy's file system storage
// polls once a second). Across processes the storage lock still decides.
type localLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// lock waits until id is free in this process and takes it; it returns
// false when done closes first.
func (l *localLocks) lock(id string, done <-chan struct{}) bool {
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[string]chan struct{}{}
		}
		ch, busy := l.held[id]
		if !busy {
			l.held[id] = make(chan struct{})
			l.mu.Unlock()
			return true
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// unlock frees id and wakes its waiters.
func (l *localLocks) unlock(id string) {
	l.mu.Lock()
	ch := l.held[id]
	delete(l.held, id)
	l.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}
