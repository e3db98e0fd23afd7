package osssign

import (
	"math/rand/v2"
	"testing"

	"github.com/caddy-oss/caddy-oss/internal/refsign"
)

// TestURIEncodeMatchesReference encodes every byte and generated strings
// both ways: with the signer's table and with the reference encoder.
func TestURIEncodeMatchesReference(t *testing.T) {
	inputs := []string{"", "a", "/", "//a//", "uploads/alice smith/ünï+%*~.bin", "$=&?#"}
	for c := 0; c < 256; c++ {
		inputs = append(inputs, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(3) == 0 {
				b[i] = byte(rng.IntN(256))
			} else {
				b[i] = "abcXYZ019-_.~/ %+"[rng.IntN(17)]
			}
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		for _, keep := range []bool{false, true} {
			if got, want := string(AppendURIEncode([]byte("p="), s, keep)), "p="+refsign.URIEncode(s, keep); got != want {
				t.Fatalf("AppendURIEncode(%q, %v) = %q, reference %q", s, keep, got, want)
			}
		}
	}
}
