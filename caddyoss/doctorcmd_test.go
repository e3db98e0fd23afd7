package caddyoss

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-oss/caddy-oss/internal/doctor"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

const (
	doctorBucket = "examplebucket"
	doctorAK     = "LTAI5tDoctorKey"
	doctorSK     = "doctor-secret-0123456789"
	doctorRole   = "acs:ram::1234567890123456:role/uploader"
)

// doctorEmu is a bucket set up as docs/install.md asks for the site
// https://uploads.example.com.
func doctorEmu(t *testing.T) *ossemu.Emulator {
	t.Helper()
	emu, err := ossemu.Start(ossemu.Options{
		Buckets:    []string{doctorBucket},
		AccessKeys: map[string]string{doctorAK: doctorSK},
		Roles:      []ossemu.Role{{ARN: doctorRole}},
		CORS: []ossemu.CORSRule{{AllowedOrigins: []string{"https://uploads.example.com"},
			AllowedMethods: []string{"PUT", "POST"}, AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	emu.SetBlockPublicAccess(doctorBucket, true)
	return emu
}

// doctorCaddyfile is a site with every route, STS and bound callbacks,
// against the emulator, with its credentials in the environment.
func doctorCaddyfile(t *testing.T, emu *ossemu.Emulator, region string) string {
	t.Helper()
	t.Setenv("DOCTOR_AK", doctorAK)
	t.Setenv("DOCTOR_SK", doctorSK)
	return `uploads.example.com {
	oss_upload {
		bucket ` + doctorBucket + `
		region ` + region + `
		endpoint ` + emu.Endpoint() + `
		upload_url ` + emu.Endpoint() + `/` + doctorBucket + `
		access_key_id {env.DOCTOR_AK}
		access_key_secret {env.DOCTOR_SK}
		key_prefix uploads/{http.auth.user.id}/
		allow_types image/png image/*
		sts {
			role_arn ` + doctorRole + `
			session_name web-{http.auth.user.id}
			endpoint ` + emu.STSEndpoint() + `
		}
		callback {
			url https://203.0.113.10/oss/callback
		}
	}
}
`
}

// A Caddyfile, adapted as `caddy oss-doctor` adapts it, through the
// handler's own defaults, credentials and AssumeRole call: every check
// passes and nothing is left in the bucket.
func TestDoctorCaddyfilePasses(t *testing.T) {
	emu := doctorEmu(t)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(doctorCaddyfile(t, emu, "cn-hangzhou")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, _, err := caddycmd.LoadConfig(path, "")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	failed, err := runDoctor(context.Background(), &out, cfg, doctor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `oss_upload (server srv0, site uploads.example.com): bucket examplebucket, region cn-hangzhou
✓ credentials (access_key_id in the config)
✓ bucket examplebucket in region cn-hangzhou
✓ PutObject below uploads/oss-doctor/
✓ HeadObject (callback confirmation)
✓ DeleteObject (deleting uploads outside the limits)
✓ InitiateMultipartUpload (Uppy multipart)
✓ ListParts (Uppy multipart)
✓ AbortMultipartUpload (Uppy multipart)
✓ sts:AssumeRole acs:ram::1234567890123456:role/uploader
✓ PutObject with the STS credentials below uploads/oss-doctor/
✓ CORS: https://uploads.example.com may POST (PostObject)
✓ CORS: https://uploads.example.com may PUT with Content-Type (presigned PUT)
✓ CORS: https://uploads.example.com may PUT parts (Uppy multipart)
✓ CORS: https://uploads.example.com may PUT with the SDK's headers (STS)
✓ CORS: https://uploads.example.com may POST with the SDK's headers (STS multipart)
✓ CORS: ETag exposed to https://uploads.example.com (multipart)
✓ Block Public Access is on
✓ callback URL is https
✓ callback URL is public
✓ callback asks OSS for SNI

1 handler, no problems found: 20 passed, 0 failed, 0 skipped
`
	if got := out.String(); got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	if failed != 0 {
		t.Errorf("failed %d", failed)
	}
	if keys := emu.Keys(doctorBucket); len(keys) != 0 {
		t.Errorf("the doctor left objects: %q", keys)
	}
}

// The registered command, run as the caddy binary runs it: flags, the
// config file, the report on stdout, and status 1 (an error) when a check
// fails.
func TestDoctorCommand(t *testing.T) {
	emu := doctorEmu(t)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(doctorCaddyfile(t, emu, "cn-beijing")), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		c, ok := caddycmd.Commands()["oss-doctor"]
		if !ok {
			t.Fatal("oss-doctor is not registered")
		}
		cmd := &cobra.Command{Use: c.Name, SilenceUsage: true, SilenceErrors: true}
		c.CobraFunc(cmd)
		cmd.SetArgs(args)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout := os.Stdout
		os.Stdout = w
		done := make(chan []byte)
		go func() { b, _ := io.ReadAll(r); done <- b }()
		err = cmd.Execute()
		os.Stdout = stdout
		w.Close()
		return string(<-done), err
	}

	out, err := run("--config", path, "--adapter", "caddyfile", "--origin", "https://uploads.example.com")
	if err == nil || err.Error() != "oss-doctor: 1 check failed" {
		t.Fatalf("err = %v, want oss-doctor: 1 check failed\n%s", err, out)
	}
	for _, line := range []string{
		"oss_upload (server srv0, site uploads.example.com): bucket examplebucket, region cn-beijing",
		"✗ bucket examplebucket in region cn-beijing: OSS says the bucket is in cn-hangzhou. Fix: set region cn-hangzhou (and endpoint and upload_url, if you set them, to that region's)",
		"- PutObject below uploads/oss-doctor/: skipped (the bucket is in another region)",
		"1 handler, problems found: 11 passed, 1 failed, 8 skipped",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("no line %q in\n%s", line, out)
		}
	}

	// A config without the handler: nothing to check, status 0.
	empty := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(empty, []byte("localhost:1\nrespond ok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run("-c", empty)
	if err != nil || out != "no oss_upload handler in the config\n" {
		t.Fatalf("empty config: %v %q", err, out)
	}
}
