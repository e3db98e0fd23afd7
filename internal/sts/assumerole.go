package sts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	stsapi "github.com/alibabacloud-go/sts-20150401/v2/client"
	util "github.com/alibabacloud-go/tea-utils/v2/service"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/credentials-go/credentials"

	"github.com/caddy-oss/caddy-oss/internal/osssign"
	"github.com/caddy-oss/caddy-oss/internal/redact"
)

// newClients builds the STS clients of a broker. An SDK client is not
// safe for concurrent calls (it keeps per-call state in itself): one per
// lane, used only under the lane's lock.
func newClients(endpoint, region string, cred credentials.Credential) (clients [len(lanes)]*stsapi.Client, err error) {
	protocol, host, err := splitEndpoint(endpoint)
	if err != nil {
		return clients, err
	}
	for i := range clients {
		if clients[i], err = stsapi.NewClient(&openapi.Config{
			Credential:     cred,
			Endpoint:       tea.String(host),
			Protocol:       tea.String(protocol),
			RegionId:       tea.String(region),
			ConnectTimeout: tea.Int(int(defaultConnectTimeout / time.Millisecond)),
			ReadTimeout:    tea.Int(int(defaultReadTimeout / time.Millisecond)),
		}); err != nil {
			return clients, fmt.Errorf("sts client: %w", err)
		}
	}
	return clients, nil
}

// AssumeRole makes one AssumeRole call for (session, policy), bypassing
// the cache. Its error is the SDK's, which may quote the signed request:
// log ErrorSummary(err), not err.
func (b *Broker) AssumeRole(_ context.Context, session, policy string) (osssign.Credentials, error) {
	req := &stsapi.AssumeRoleRequest{
		RoleArn:         tea.String(b.cfg.RoleARN),
		RoleSessionName: tea.String(session),
		DurationSeconds: tea.Int64(int64(b.cfg.Duration / time.Second)),
		Policy:          tea.String(policy),
	}
	if b.cfg.ExternalID != "" {
		req.ExternalId = tea.String(b.cfg.ExternalID)
	}
	var resp *stsapi.AssumeRoleResponse
	var err error
	withLane(func(lane int) {
		runtime := &util.RuntimeOptions{
			ConnectTimeout: tea.Int(int(b.ConnectTimeout / time.Millisecond)),
			ReadTimeout:    tea.Int(int(b.ReadTimeout/time.Millisecond) + lane),
			Autoretry:      tea.Bool(false),
		}
		resp, err = b.clients[lane].AssumeRoleWithOptions(req, runtime)
	})
	if err != nil {
		return osssign.Credentials{}, err
	}
	return parseAssumeRole(resp)
}

// splitEndpoint splits "host", "host:port" or "http(s)://host[:port]"
// into the SDK's protocol and endpoint.
func splitEndpoint(e string) (protocol, host string, err error) {
	if e == "" {
		return "", "", errors.New("sts endpoint is empty")
	}
	u, err := url.Parse(e)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		if u.Path != "" && u.Path != "/" {
			return "", "", fmt.Errorf("sts endpoint %q must not have a path", e)
		}
		return u.Scheme, u.Host, nil
	}
	return "https", e, nil
}

func parseAssumeRole(resp *stsapi.AssumeRoleResponse) (osssign.Credentials, error) {
	if resp == nil || resp.Body == nil || resp.Body.Credentials == nil {
		return osssign.Credentials{}, errors.New("AssumeRole returned no credentials")
	}
	c := resp.Body.Credentials
	exp, err := time.Parse(time.RFC3339, tea.StringValue(c.Expiration))
	if err != nil {
		return osssign.Credentials{}, fmt.Errorf("AssumeRole returned an invalid Expiration: %w", err)
	}
	out := osssign.Credentials{
		ID:         tea.StringValue(c.AccessKeyId),
		Secret:     tea.StringValue(c.AccessKeySecret),
		Token:      tea.StringValue(c.SecurityToken),
		Expiration: exp,
	}
	if out.ID == "" || out.Secret == "" || out.Token == "" {
		return osssign.Credentials{}, errors.New("AssumeRole returned incomplete credentials")
	}
	return out, nil
}

// ErrorSummary reduces an error of an AssumeRole call to text that is safe
// to log. The SDK's errors are not: a network error (*url.Error) quotes the
// whole signed request URL, whose Signature, SignatureNonce and
// AccessKeyId let anyone who reads the log replay it for fresh credentials
// within its validity window; an error answer's message may echo the
// request, and an undecodable answer, which may hold credentials, is quoted
// in the decoding error.
func ErrorSummary(err error) string {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return redact.Secrets(tea.StringValue(se.Code) + ": " + tea.StringValue(se.Message))
	}
	msg := err.Error()
	// An answer that is JSON but not an object is quoted in full
	// ("<answer> is not a map[string]interface{}"), and a field of the wrong
	// type with a window of the answer around it (", error found in #N byte
	// of ...|<answer>|..."); only the complaint is kept.
	if strings.HasSuffix(msg, " is not a map[string]interface{}") {
		return "the answer is not a JSON object"
	}
	if i := strings.Index(msg, ", error found in #"); i >= 0 {
		msg = msg[:i]
	}
	return redact.Secrets(msg)
}
