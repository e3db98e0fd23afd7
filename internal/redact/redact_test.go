package redact

import (
	"testing"
)

func TestRedactSecrets(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{
			"url.Error",
			`Post "http://127.0.0.1:39645/?AccessKeyId=testid&Action=AssumeRole&Signature=mxN%2BgI3hW%2FAOV%3D&SignatureNonce=fb20015b50898d15": dial tcp 127.0.0.1:39645: connect: connection refused`,
			`Post "http://127.0.0.1:39645/": dial tcp 127.0.0.1:39645: connect: connection refused`,
		},
		{
			"user info and fragment",
			`Get "https://user:pw@sts.example.com/a/b?x=1#f": EOF`,
			`Get "https://sts.example.com/a/b": EOF`,
		},
		{
			"bare query",
			`bad request /?SecurityToken=CAIS123&Signature=abc%2B%3D&SignatureMethod=HMAC-SHA1`,
			`bad request /?SecurityToken=REDACTED&Signature=REDACTED&SignatureMethod=HMAC-SHA1`,
		},
		{
			"string to sign",
			`server string to sign is:POST&%2F&AccessKeyId%3Dtestid%26Action%3DAssumeRole%26SignatureNonce%3Dabc%252B%26Timestamp%3D1`,
			`server string to sign is:POST&%2F&AccessKeyId%3DREDACTED%26Action%3DAssumeRole%26SignatureNonce%3DREDACTED%26Timestamp%3D1`,
		},
		{
			"JSON",
			`{"AccessKeySecret":"s3cr3t","SecurityToken": "tok","Other":"x"}`,
			`{"AccessKeySecret":"REDACTED","SecurityToken": "REDACTED","Other":"x"}`,
		},
		{
			"escaped JSON",
			`{\"AccessKeySecret\":\"s3cr3t\"}`,
			`{\"AccessKeySecret\":\"REDACTED\"}`,
		},
		{
			"url.Values",
			`map[AccessKeyId:[testid] Signature:[ab+c=] SignatureNonce:[n1]]`,
			`map[AccessKeyId:[REDACTED] Signature:[REDACTED] SignatureNonce:[REDACTED]]`,
		},
		{
			"header",
			`x-acs-security-token: CAIS123`,
			`x-acs-security-token: REDACTED`,
		},
		{
			"nothing to redact",
			`callback signature does not verify; SignatureDoesNotMatch: status 403`,
			`callback signature does not verify; SignatureDoesNotMatch: status 403`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Secrets(tc.in); got != tc.want {
				t.Errorf("Secrets(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}
