package ossemu

import (
	"net/http"
	"sort"
)

// Permissions of the account's permanent keys: by default a key may do
// anything, as the account's own AccessKey may. A key given a list of
// actions (Options.KeyActions, SetKeyActions) stands for a RAM user with
// those actions on every resource: any other action is answered 403
// AccessDenied (OSS) or NoPermission (STS), as OSS and STS answer a RAM
// user whose policies do not allow it.

// SetKeyActions limits a permanent access key to the given RAM actions
// ("oss:PutObject", "oss:GetObject", "sts:AssumeRole", "oss:*", ...;
// * and ? are wildcards). No actions at all denies everything; call
// ClearKeyActions to give the key every permission again.
func (e *Emulator) SetKeyActions(accessKeyID string, actions ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keyActions[accessKeyID] = append([]string{}, actions...)
}

// ClearKeyActions lifts the limits SetKeyActions put on a key.
func (e *Emulator) ClearKeyActions(accessKeyID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.keyActions, accessKeyID)
}

// KeyActions returns the actions a permanent key is limited to, sorted,
// and whether it is limited at all.
func (e *Emulator) KeyActions(accessKeyID string) ([]string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.keyActions[accessKeyID]
	if !ok {
		return nil, false
	}
	out := append([]string{}, a...)
	sort.Strings(out)
	return out, true
}

// keyAllows reports whether a permanent key may run a RAM action.
func (e *Emulator) keyAllows(accessKeyID, action string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	actions, limited := e.keyActions[accessKeyID]
	return !limited || matchAny(actions, action, true)
}

// authorizeKey is authorize for a permanent key.
func (e *Emulator) authorizeKey(p *principal, action, resource string) *ossError {
	if e.keyAllows(p.accessKeyID, action) {
		return nil
	}
	return newErr(http.StatusForbidden, "AccessDenied",
		"You have no right to access this object because of RAM policy: "+action+" on "+resource+" is not allowed.")
}

// resourceARN is the RAM resource of a bucket, or of an object when key is
// not empty.
func (e *Emulator) resourceARN(bucketName, key string, object bool) string {
	r := "acs:oss:" + e.region + ":" + ownerID + ":" + bucketName
	if object {
		r += "/" + key
	}
	return r
}
