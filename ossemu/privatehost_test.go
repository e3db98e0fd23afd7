package ossemu

import "testing"

// privateHost holds every address OSS would not call back, by literal or
// by name, and lets public addresses through.
func TestPrivateHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "localhost": true,
		"10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true, "fd00::1": true,
		"169.254.169.254": true, "fe80::1": true, "0.0.0.0": true, "::": true,
		"name.invalid": true,
		"203.0.113.7":  false, "8.8.8.8": false, "2001:db8::1": false,
	} {
		if got := privateHost(t.Context(), host); got != want {
			t.Errorf("privateHost(%q) = %v, want %v", host, got, want)
		}
	}
}
