package caddyoss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-oss/caddy-oss/internal/doctor"
	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/sts"
)

// The `caddy oss-doctor` command lives here, not in its own package, so
// that every Caddy built with oss_upload has it. The checks are package
// internal/doctor; this file turns each handler of the config into what
// they need, with the handler's own defaults, credential source, session
// policy and AssumeRole call.

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oss-doctor",
		Usage: "[--config <path>] [--adapter <name>] [--origin <url>]",
		Short: "Checks every oss_upload handler of a config against its OSS bucket",
		Long: `
Reads a config as 'caddy run' does (default: ./Caddyfile) and, for every
oss_upload handler in it, checks against the real bucket, with the
configured credentials:

  - the credentials work and the bucket is in the configured region;
  - the permissions the configured routes need: PutObject, HeadObject
    and DeleteObject for bound callbacks and confirms, the multipart calls of the Uppy
    routes, sts:AssumeRole with the STS route's session policy (and an
    upload with the credentials it returns);
  - the bucket's CORS rules let the site's origin upload in every mode
    (--origin, default: the site address) and expose ETag;
  - Block Public Access is on where uploaders can choose an object's ACL;
  - the callback URL is https, public, and asks OSS for SNI (unless
    confirm_only asks OSS for no callback).

Objects the checks write go below <key_prefix>.oss-doctor/ and are
deleted. Request placeholders in the config (the user's id, a header)
become "oss-doctor". Prints one line per check and exits with status 1
when one fails.`,
		CobraFunc: func(cmd *cobra.Command) {
			fs := cmd.Flags()
			fs.StringP("config", "c", "", "configuration file (default: ./Caddyfile)")
			fs.StringP("adapter", "a", "", "name of the config adapter to use")
			fs.String("origin", "", "origin of the pages that upload, e.g. https://www.example.com (default: from the site address)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdDoctor)
		},
	})
}

func cmdDoctor(fl caddycmd.Flags) (int, error) {
	cfg, _, _, err := caddycmd.LoadConfig(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	failed, err := runDoctor(context.Background(), os.Stdout, cfg, doctor.Options{Origin: fl.String("origin")})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if failed > 0 {
		return 1, fmt.Errorf("oss-doctor: %d %s failed", failed, map[bool]string{true: "check", false: "checks"}[failed == 1])
	}
	return 0, nil
}

// runDoctor checks every oss_upload handler of a JSON config and returns
// how many checks failed.
func runDoctor(ctx context.Context, w io.Writer, cfg []byte, opts doctor.Options) (int, error) {
	found, err := doctor.FindHandlers(cfg)
	if err != nil {
		return 0, err
	}
	targets := make([]doctor.Target, 0, len(found))
	for _, f := range found {
		t, err := doctorTarget(ctx, f)
		if err != nil {
			return 0, fmt.Errorf("oss_upload (%s): %w", f.Label, err)
		}
		targets = append(targets, t)
	}
	return doctor.Run(ctx, w, targets, opts).Failed, nil
}

// doctorTarget is a handler as the doctor checks it: decoded as Caddy
// decodes it, with Provision's defaults, {env.*} expanded and request
// placeholders replaced by doctor.DoctorValue.
func doctorTarget(ctx context.Context, f doctor.Found) (doctor.Target, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(f.Raw, &fields); err != nil {
		return doctor.Target{}, err
	}
	delete(fields, "handler")
	raw, _ := json.Marshal(fields)
	h := new(Handler)
	if err := json.Unmarshal(raw, h); err != nil {
		return doctor.Target{}, err
	}
	repl := caddy.NewReplacer()
	expand := func(s string) string { return repl.ReplaceAll(s, doctor.DoctorValue) }
	for _, s := range []*string{&h.Bucket, &h.Region, &h.Endpoint, &h.UploadURL, &h.AccessKeyID,
		&h.AccessKeySecret, &h.SignatureVersion, &h.KeyPrefix} {
		*s = expand(*s)
	}
	h.applyRouteDefaults()
	uploadURL := strings.TrimSuffix(h.UploadURL, "/")
	if uploadURL == "" {
		scheme, host, ok := strings.Cut(h.Endpoint, "://")
		if !ok {
			return doctor.Target{}, fmt.Errorf("endpoint: %q is not an absolute URL", h.Endpoint)
		}
		host, _, _ = strings.Cut(host, "/")
		uploadURL = scheme + "://" + h.Bucket + "." + host
	}
	t := doctor.Target{
		Label: f.Label, Origins: f.Origins,
		Bucket: h.Bucket, Region: h.Region, Endpoint: h.Endpoint, UploadURL: uploadURL,
		SignatureV1: strings.EqualFold(h.SignatureVersion, osssign.V1),
		Prefix:      h.KeyPrefix, ContentType: "application/octet-stream",
		PostObject: h.PolicyPath != routeOff, Presign: h.PresignPath != routeOff, Uppy: h.UppyPath != routeOff,
		BoundCallbacks: (h.CallbackPath != routeOff || h.confirmOn()) && h.Callback != nil && !h.Callback.VerifyOnly,
	}
	for _, at := range h.AllowTypes {
		if !strings.Contains(at, "*") {
			t.ContentType = at
			break
		}
	}
	stsOn := h.STSPath != routeOff && h.STS != nil
	switch {
	case stsOn:
		t.ClientACL = "STS uploaders can set an object's ACL"
	case strings.EqualFold(h.FormFields, formFieldsMinimal) && (t.PostObject || t.Uppy):
		t.ClientACL = "with form_fields minimal PostObject uploaders can add an x-oss-object-acl field"
	}
	// With confirm_only no signing answer asks OSS for a callback: its
	// URL may be one OSS cannot reach.
	if c := h.Callback; c != nil && expand(c.URL) != "" && h.signingEnabled() && !c.ConfirmOnly {
		t.Callback = &doctor.Callback{URL: expand(c.URL), SNI: !c.DisableSNI, SNIOption: "sni off (JSON: disable_sni)"}
	}

	src, err := newCredentialSource(h.AccessKeyID, h.AccessKeySecret)
	if err == nil {
		err = src.resolve(ctx, credentialResolveTimeout)
	}
	if err != nil {
		t.CredentialsErr = err
	} else {
		t.Credentials = src
		t.CredentialsFrom = "access_key_id in the config"
		if src.origin != originStatic {
			t.CredentialsFrom = "default credential chain: " + src.origin
		}
	}

	if stsOn {
		s := *h.STS
		s.RoleARN, s.ExternalID, s.Endpoint = expand(s.RoleARN), expand(s.ExternalID), expand(s.Endpoint)
		if s.SessionName == "" {
			s.SessionName = defaultSessionName
		}
		if s.Duration == 0 {
			s.Duration = caddy.Duration(sts.DefaultDuration)
		}
		if s.Endpoint == "" {
			s.Endpoint = "sts." + h.Region + ".aliyuncs.com"
		}
		policy, err := sts.UploadPolicy(h.Bucket, h.KeyPrefix)
		if err != nil {
			return doctor.Target{}, err
		}
		t.STS = &doctor.STS{RoleARN: s.RoleARN, SessionName: sanitizeSessionName(expand(s.SessionName)),
			Policy: policy, Duration: time.Duration(s.Duration)}
		if src != nil && t.CredentialsErr == nil {
			cred, err := src.credential()
			if err != nil {
				return doctor.Target{}, err
			}
			broker, err := newSTSBroker(s, h.Region, cred, zap.NewNop())
			if err != nil {
				return doctor.Target{}, err
			}
			t.STS.AssumeRole = func(ctx context.Context, session, policy string) (doctor.Credentials, error) {
				c, err := broker.AssumeRole(ctx, session, policy)
				if err != nil {
					return doctor.Credentials{}, err
				}
				return doctor.Credentials{ID: c.ID, Secret: c.Secret, Token: c.Token}, nil
			}
		} else {
			t.STS.AssumeRole = func(context.Context, string, string) (doctor.Credentials, error) {
				return doctor.Credentials{}, errors.New("no credentials")
			}
		}
	}
	return t, nil
}
