package caddyoss

import "strconv"

// untrustedKeyMessage is the refusal of a callback whose public key URL
// (raw, as decoded from x-oss-pub-key-url) is not Alibaba's and no
// trusted_key is configured: it names the URL, quoted and cut to 200
// bytes since the sender chose it, and the option that would trust a key.
func untrustedKeyMessage(raw string) string {
	const maxShown = 200
	shown := raw
	if len(shown) > maxShown {
		shown = shown[:maxShown] + "..."
	}
	return errUntrustedKey.Error() + ": " + strconv.QuoteToASCII(shown) + " is not on " + alibabaKeyHost +
		" and no callback trusted_key is configured (add trusted_key <pem-file> with the public key that signs these callbacks)"
}
