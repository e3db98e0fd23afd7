package sts

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestUploadPolicy(t *testing.T) {
	tests := []struct{ bucket, prefix, want string }{
		{"examplebucket", "user/eric/", `{"Statement":[{"Action":["oss:PutObject","oss:InitiateMultipartUpload","oss:UploadPart","oss:CompleteMultipartUpload","oss:AbortMultipartUpload","oss:ListParts"],"Effect":"Allow","Resource":["acs:oss:*:*:examplebucket/user/eric/*"]}],"Version":"1"}`},
		{"b", `q"<&>/`, `{"Statement":[{"Action":["oss:PutObject","oss:InitiateMultipartUpload","oss:UploadPart","oss:CompleteMultipartUpload","oss:AbortMultipartUpload","oss:ListParts"],"Effect":"Allow","Resource":["acs:oss:*:*:b/q\"<&>/*"]}],"Version":"1"}`},
	}
	for _, tc := range tests {
		got, err := UploadPolicy(tc.bucket, tc.prefix)
		if err != nil || got != tc.want {
			t.Errorf("UploadPolicy(%q, %q) = %s, %v", tc.bucket, tc.prefix, got, err)
		}
		var v any
		if json.Unmarshal([]byte(got), &v) != nil {
			t.Errorf("not JSON: %s", got)
		}
	}
	if _, err := UploadPolicy("b", strings.Repeat("x", 2000)); err == nil {
		t.Error("an oversized policy was accepted")
	}
}
