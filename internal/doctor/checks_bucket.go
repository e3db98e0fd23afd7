package doctor

// The checks of the bucket and its objects: the credentials, the bucket's
// region, and the object operations the handler's routes make.

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// bucketChecks checks the credentials and the bucket's region; it returns
// why the checks that need the bucket cannot run, or "".
func (r *run) bucketChecks() string {
	t := r.t
	if t.CredentialsErr != nil {
		r.fail(chkCredentials, t.CredentialsErr.Error(),
			"set access_key_id and access_key_secret, or credentials for Alibaba Cloud's default credential chain (see docs/operations.md)")
		r.skip(r.chkRegion(), "no credentials")
		return "no credentials"
	}
	id := r.opts.probeID
	if id == "" {
		random := make([]byte, 8)
		_, _ = rand.Read(random)
		id = hex.EncodeToString(random)
	}
	r.probeDir = t.Prefix + ".oss-doctor/" + id + "/"

	base := []oss.ClientOption{oss.SetCredentialsProvider(t.Credentials), oss.Timeout(5, 15)}
	v1, err := oss.New(t.Endpoint, "", "", append(base, oss.AuthVersion(oss.AuthV1))...)
	if err == nil {
		r.v1 = v1
		var c *oss.Client
		opts := append(base, oss.Region(t.Region))
		if !t.SignatureV1 {
			opts = append(opts, oss.AuthVersion(oss.AuthV4))
		}
		if c, err = oss.New(t.Endpoint, "", "", opts...); err == nil {
			r.server, err = c.Bucket(t.Bucket)
		}
		if err == nil {
			if c, err = oss.New(t.Endpoint, "", "", append(base, oss.Region(t.Region), oss.AuthVersion(oss.AuthV4))...); err == nil {
				r.v4, err = c.Bucket(t.Bucket)
			}
		}
	}
	if err != nil {
		r.fail(chkCredentials, "cannot build an OSS client for endpoint "+t.Endpoint+": "+err.Error(), "set endpoint to an https URL such as https://oss-"+t.Region+".aliyuncs.com")
		r.skip(r.chkRegion(), "no OSS client")
		return "no OSS client"
	}

	loc, err := r.v1.GetBucketLocation(t.Bucket, oss.WithContext(r.ctx))
	if err == nil {
		r.pass(chkCredentials + " (" + t.CredentialsFrom + ")")
		got := strings.TrimPrefix(loc, "oss-")
		if got != t.Region {
			r.fail(r.chkRegion(), "OSS says the bucket is in "+got,
				"set region "+got+r.endpointFix(got))
			return "the bucket is in another region"
		}
		r.pass(r.chkRegion())
		return ""
	}
	se, ok := err.(oss.ServiceError)
	if !ok {
		r.fail(chkCredentials, "cannot reach OSS at "+t.Endpoint+": "+err.Error(), "check endpoint and this machine's network")
		r.skip(r.chkRegion(), "OSS unreachable")
		return "OSS unreachable"
	}
	switch {
	case se.Code == "NoSuchBucket":
		r.skip(chkCredentials, "the bucket does not exist")
		r.fail(r.chkRegion(), "OSS has no bucket "+t.Bucket, "create the bucket in "+t.Region+", or fix bucket")
		return "no bucket"
	case se.Endpoint != "":
		got := endpointRegion(se.Endpoint)
		r.skip(chkCredentials, "the bucket is in another region")
		r.fail(r.chkRegion(), "OSS says the bucket must be addressed at "+se.Endpoint, "set region "+got+r.endpointFix(got))
		return "the bucket is in another region"
	case se.Code == "AccessDenied":
		r.pass(chkCredentials + " (" + t.CredentialsFrom + ")")
		r.skip(r.chkRegion(), "these credentials may not call GetBucketLocation; PutObject below shows whether requests reach the bucket")
		return ""
	case credentialCodes[se.Code]:
		r.fail(chkCredentials+" ("+t.CredentialsFrom+")", "OSS refused them: "+describe(err),
			"check access_key_id and access_key_secret, or what the credential chain provides")
		r.skip(r.chkRegion(), "credentials refused")
		return "credentials refused"
	}
	r.fail(chkCredentials, "GetBucketLocation failed: "+describe(err), "check endpoint, bucket and credentials")
	r.skip(r.chkRegion(), "GetBucketLocation failed")
	return "GetBucketLocation failed"
}

var credentialCodes = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "InvalidSecurityToken": true,
	"SecurityTokenExpired": true, "AccessKeyDisabled": true,
}

func (r *run) endpointFix(region string) string {
	if r.t.Endpoint != "" && !strings.Contains(r.t.Endpoint, "oss-"+r.t.Region+".") {
		return " (and endpoint and upload_url, if you set them, to that region's)"
	}
	return " (endpoint and upload_url follow it unless you set them: https://oss-" + region + ".aliyuncs.com)"
}

// endpointRegion reads the region of an OSS endpoint host such as
// oss-cn-hangzhou.aliyuncs.com.
func endpointRegion(host string) string {
	host = strings.TrimPrefix(host, "oss-")
	host, _, _ = strings.Cut(host, ".")
	return strings.TrimSuffix(host, "-internal")
}

// allow is the fix for a denied action.
func (r *run) allow(action string) string {
	return "allow " + action + " on acs:oss:*:*:" + r.t.Bucket + "/" + r.resourcePrefix() + "* to the server's RAM user or role"
}

func (r *run) objectChecks(reason string) {
	t := r.t
	uppyChecks := []string{chkInitiate, chkListParts, chkAbort}
	if reason != "" {
		r.skip(r.chkPut(), reason)
		r.skipUnless(t.BoundCallbacks, chkHead, reason, "no bound callbacks")
		r.skipUnless(t.BoundCallbacks, chkDelete, reason, "no bound callbacks")
		for _, c := range uppyChecks {
			r.skipUnless(t.Uppy, c, reason, "the Uppy routes are off")
		}
		return
	}
	key := r.probeDir + "probe.txt"
	err := r.server.PutObject(key, strings.NewReader(DoctorValue), oss.ContentType(t.ContentType),
		oss.ObjectACL(oss.ACLDefault), oss.WithContext(r.ctx))
	stored := err == nil
	if err != nil {
		r.fail(r.chkPut(), "OSS refused PutObject of "+key+": "+describe(err), r.allow("oss:PutObject"))
		r.skipUnless(t.BoundCallbacks, chkHead, "no object to read", "no bound callbacks")
	} else {
		r.pass(r.chkPut())
		if !t.BoundCallbacks {
			r.skip(chkHead, "no bound callbacks")
		} else if _, err := r.server.GetObjectDetailedMeta(key, oss.WithContext(r.ctx)); err != nil {
			r.fail(chkHead, "OSS refused HeadObject: "+describe(err)+"; every bound callback would be refused", r.allow("oss:GetObject"))
		} else {
			r.pass(chkHead)
		}
	}
	if stored {
		err := r.server.DeleteObject(key, oss.WithContext(r.ctx))
		switch {
		case err == nil && t.BoundCallbacks:
			r.pass(chkDelete)
		case err == nil:
			r.skip(chkDelete, "no bound callbacks")
		case t.BoundCallbacks:
			r.fail(chkDelete, "OSS refused DeleteObject: "+describe(err)+"; uploads outside the limits would stay in the bucket",
				r.allow("oss:DeleteObject")+", and delete "+key+" by hand")
		default:
			r.skip(chkDelete, "no bound callbacks")
			r.note("cleanup: " + key + " is left in the bucket (DeleteObject: " + describe(err) + "); delete it by hand")
		}
	} else {
		r.skipUnless(t.BoundCallbacks, chkDelete, "no object to delete", "no bound callbacks")
	}

	if !t.Uppy {
		for _, c := range uppyChecks {
			r.skip(c, "the Uppy routes are off")
		}
		return
	}
	imur, err := r.server.InitiateMultipartUpload(r.probeDir+"multipart.bin", oss.ContentType(t.ContentType),
		oss.ObjectACL(oss.ACLDefault), oss.WithContext(r.ctx))
	if err != nil {
		r.fail(chkInitiate, "OSS refused InitiateMultipartUpload: "+describe(err), r.allow("oss:PutObject"))
		r.skip(chkListParts, "no multipart upload")
		r.skip(chkAbort, "no multipart upload")
		return
	}
	r.pass(chkInitiate)
	if _, err := r.server.ListUploadedParts(imur, oss.WithContext(r.ctx)); err != nil {
		r.fail(chkListParts, "OSS refused ListParts: "+describe(err)+"; Uppy's multipart uploads could not complete", r.allow("oss:ListParts"))
	} else {
		r.pass(chkListParts)
	}
	if err := r.server.AbortMultipartUpload(imur, oss.WithContext(r.ctx)); err != nil {
		r.fail(chkAbort, "OSS refused AbortMultipartUpload: "+describe(err)+"; uploads outside the limits would stay as parts",
			r.allow("oss:AbortMultipartUpload")+", and abort upload "+imur.UploadID+" of "+imur.Key+" by hand (or let a lifecycle rule do it)")
	} else {
		r.pass(chkAbort)
	}
}

// skipUnless skips check for reason when on, else for off.
func (r *run) skipUnless(on bool, check, reason, off string) {
	if on {
		r.skip(check, reason)
	} else {
		r.skip(check, off)
	}
}
