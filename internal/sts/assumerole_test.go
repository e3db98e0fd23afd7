package sts

import "testing"

func TestSTSEndpoint(t *testing.T) {
	tests := []struct{ in, proto, host string }{
		{"sts.cn-hangzhou.aliyuncs.com", "https", "sts.cn-hangzhou.aliyuncs.com"},
		{"http://127.0.0.1:9999", "http", "127.0.0.1:9999"},
		{"https://sts.example.com/", "https", "sts.example.com"},
	}
	for _, tc := range tests {
		p, h, err := splitEndpoint(tc.in)
		if err != nil || p != tc.proto || h != tc.host {
			t.Errorf("splitEndpoint(%q) = %q %q %v", tc.in, p, h, err)
		}
	}
	if _, _, err := splitEndpoint("http://x/path"); err == nil {
		t.Error("a path was accepted")
	}
}
