package ossemu

import (
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bucket configuration the emulator answers over the API: bucket CORS
// (PutBucketCors, GetBucketCors, DeleteBucketCors), the bucket's region
// (GetBucketLocation, GetBucketInfo) and Block Public Access
// (PutBucketPublicAccessBlock, GetBucketPublicAccessBlock,
// DeleteBucketPublicAccessBlock).

// bucketConf is what a bucket's configuration API changed.
type bucketConf struct {
	created time.Time
	// corsSet: cors replaces the emulator's rules (Options.CORS) for this
	// bucket; an empty list after DeleteBucketCors means no CORS at all.
	corsSet bool
	cors    []CORSRule
	// blockPublicAccess refuses public object ACLs on writes.
	blockPublicAccess bool
}

// conf returns the bucket's configuration, creating it. Call with e.mu held.
func (e *Emulator) conf(bucketName string) *bucketConf {
	c := e.bucketConf[bucketName]
	if c == nil {
		c = &bucketConf{created: e.now().UTC()}
		e.bucketConf[bucketName] = c
	}
	return c
}

// SetBucketCORS replaces a bucket's CORS rules, as PutBucketCors does;
// nil or empty rules remove them, as DeleteBucketCors does (every
// preflight is then refused).
func (e *Emulator) SetBucketCORS(bucketName string, rules []CORSRule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.conf(bucketName)
	c.corsSet, c.cors = true, append([]CORSRule{}, rules...)
}

// BucketCORS returns the CORS rules a bucket answers preflights with.
func (e *Emulator) BucketCORS(bucketName string) []CORSRule {
	return append([]CORSRule{}, e.corsRules(bucketName)...)
}

// SetBlockPublicAccess turns a bucket's Block Public Access on or off.
// With it on, writes that ask for a public-read or public-read-write
// object ACL are refused with 403 AccessDenied.
func (e *Emulator) SetBlockPublicAccess(bucketName string, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conf(bucketName).blockPublicAccess = on
}

// BlockPublicAccess reports whether a bucket's Block Public Access is on.
func (e *Emulator) BlockPublicAccess(bucketName string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.bucketConf[bucketName]
	return c != nil && c.blockPublicAccess
}

// corsRules are the rules of a bucket: its own when set, else the
// emulator's.
func (e *Emulator) corsRules(bucketName string) []CORSRule {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.bucketConf[bucketName]; c != nil && c.corsSet {
		return c.cors
	}
	return e.cors
}

// bucketConfigParams are the bucket sub-resources served here.
var bucketConfigParams = []string{"cors", "location", "bucketInfo", "publicAccessBlock"}

// serveBucketConfig answers the bucket configuration operations, and
// refuses writes asking for a public object ACL on a bucket whose Block
// Public Access is on. handled is false for every other request.
func (e *Emulator) serveBucketConfig(w http.ResponseWriter, r *http.Request, c *reqCtx) (handled bool, oe *ossError) {
	if c.key != "" || r.Method == http.MethodPost {
		return e.refusePublicACL(r, c)
	}
	param := ""
	for _, p := range bucketConfigParams {
		if _, ok := firstParam(c.query, p); ok {
			param = p
			break
		}
	}
	if param == "" {
		return false, nil
	}
	ops := map[string]map[string]string{
		"cors": {http.MethodGet: "oss:GetBucketCors", http.MethodPut: "oss:PutBucketCors",
			http.MethodDelete: "oss:DeleteBucketCors"},
		"location":   {http.MethodGet: "oss:GetBucketLocation"},
		"bucketInfo": {http.MethodGet: "oss:GetBucketInfo"},
		"publicAccessBlock": {http.MethodGet: "oss:GetBucketPublicAccessBlock",
			http.MethodPut: "oss:PutBucketPublicAccessBlock", http.MethodDelete: "oss:DeleteBucketPublicAccessBlock"},
	}[param]
	action, ok := ops[r.Method]
	if !ok {
		return true, newErr(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.").
			with("Method", r.Method).with("ResourceType", "Bucket")
	}
	p, oe := e.authenticate(r, c.bucket.name, "", c.query)
	if oe != nil {
		return true, oe
	}
	if oe := e.authorizeBucket(p, action, c.bucket.name); oe != nil {
		return true, oe
	}
	switch action {
	case "oss:GetBucketLocation":
		writeXML(w, http.StatusOK, struct {
			XMLName xml.Name `xml:"LocationConstraint"`
			Value   string   `xml:",chardata"`
		}{Value: "oss-" + e.region})
	case "oss:GetBucketInfo":
		e.writeBucketInfo(w, c.bucket.name)
	case "oss:GetBucketCors":
		rules := e.corsRules(c.bucket.name)
		if len(rules) == 0 {
			return true, newErr(http.StatusNotFound, "NoSuchCORSConfiguration", "The CORS Configuration does not exist.").
				with("BucketName", c.bucket.name)
		}
		writeXML(w, http.StatusOK, corsXML(rules))
	case "oss:PutBucketCors":
		rules, oe := readCORS(r)
		if oe != nil {
			return true, oe
		}
		e.SetBucketCORS(c.bucket.name, rules)
		w.WriteHeader(http.StatusOK)
	case "oss:DeleteBucketCors":
		e.SetBucketCORS(c.bucket.name, nil)
		w.WriteHeader(http.StatusNoContent)
	case "oss:GetBucketPublicAccessBlock":
		writeXML(w, http.StatusOK, publicAccessBlockXML{Block: e.BlockPublicAccess(c.bucket.name)})
	case "oss:PutBucketPublicAccessBlock":
		var in publicAccessBlockXML
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil || xml.Unmarshal(body, &in) != nil {
			return true, newErr(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
		}
		e.SetBlockPublicAccess(c.bucket.name, in.Block)
		w.WriteHeader(http.StatusOK)
	case "oss:DeleteBucketPublicAccessBlock":
		e.SetBlockPublicAccess(c.bucket.name, false)
		w.WriteHeader(http.StatusNoContent)
	}
	return true, nil
}

// refusePublicACL refuses, on a bucket with Block Public Access on, a
// write whose x-oss-object-acl header asks for a public object. A
// PostObject (a POST to the bucket itself) is left to servePostObject,
// where the form field, which wins over the header, decides.
func (e *Emulator) refusePublicACL(r *http.Request, c *reqCtx) (bool, *ossError) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost || r.Method == http.MethodPost && c.key == "" {
		return false, nil
	}
	if !publicRead(strings.ToLower(strings.TrimSpace(r.Header.Get("x-oss-object-acl")))) || !e.BlockPublicAccess(c.bucket.name) {
		return false, nil
	}
	return true, errPublicACLBlocked()
}

// errPublicACLBlocked is OSS's refusal of a public object ACL on a bucket
// whose Block Public Access is on.
func errPublicACLBlocked() *ossError {
	return errAccessDenied("Put public object acl is not allowed when public access block is enabled.")
}

// authorizeBucket checks a bucket-level action: a permanent key's
// actions, or an STS session's role and session policies on the bucket's
// resource.
func (e *Emulator) authorizeBucket(p *principal, action, bucketName string) *ossError {
	resource := e.resourceARN(bucketName, "", false)
	if p.session == nil {
		return e.authorizeKey(p, action, resource)
	}
	resource = "acs:oss:" + e.region + ":" + p.session.role.account + ":" + bucketName
	for _, pol := range []*ramPolicy{p.session.role.policy, p.session.policy} {
		if pol == nil {
			continue
		}
		if ok, _ := pol.decide(action, resource); !ok {
			return errAccessDenied("You have no right to access this bucket because of RAM policy: " +
				action + " on " + resource + " is not allowed.")
		}
	}
	return nil
}

type publicAccessBlockXML struct {
	XMLName xml.Name `xml:"PublicAccessBlockConfiguration"`
	Block   bool     `xml:"BlockPublicAccess"`
}

type corsRuleXML struct {
	AllowedOrigin []string `xml:"AllowedOrigin"`
	AllowedMethod []string `xml:"AllowedMethod"`
	AllowedHeader []string `xml:"AllowedHeader,omitempty"`
	ExposeHeader  []string `xml:"ExposeHeader,omitempty"`
	MaxAgeSeconds int      `xml:"MaxAgeSeconds,omitempty"`
}

type corsConfigXML struct {
	XMLName      xml.Name      `xml:"CORSConfiguration"`
	Rules        []corsRuleXML `xml:"CORSRule"`
	ResponseVary bool          `xml:"ResponseVary"`
}

func corsXML(rules []CORSRule) corsConfigXML {
	var out corsConfigXML
	for _, r := range rules {
		out.Rules = append(out.Rules, corsRuleXML{r.AllowedOrigins, r.AllowedMethods, r.AllowedHeaders, r.ExposeHeaders, r.MaxAgeSeconds})
	}
	return out
}

// readCORS parses a PutBucketCors body with OSS's rules: 1 to 10 rules,
// each with an origin and a method among GET, PUT, DELETE, POST and HEAD;
// at most one * per origin and allowed header, none in exposed headers.
func readCORS(r *http.Request) ([]CORSRule, *ossError) {
	malformed := newErr(http.StatusBadRequest, "MalformedXML",
		"The XML you provided was not well-formed or did not validate against our published schema.")
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return nil, malformed
	}
	var in corsConfigXML
	if xml.Unmarshal(body, &in) != nil || len(in.Rules) == 0 {
		return nil, malformed
	}
	if len(in.Rules) > 10 {
		return nil, errInvalidArgument("At most 10 CORS rules are allowed.", "CORSRule", strconv.Itoa(len(in.Rules)))
	}
	var rules []CORSRule
	for _, x := range in.Rules {
		if len(x.AllowedOrigin) == 0 || len(x.AllowedMethod) == 0 {
			return nil, malformed
		}
		for _, m := range x.AllowedMethod {
			switch m {
			case "GET", "PUT", "DELETE", "POST", "HEAD":
			default:
				return nil, errInvalidArgument("Unsupported method "+m+" in a CORS rule.", "AllowedMethod", m)
			}
		}
		for _, list := range [][]string{x.AllowedOrigin, x.AllowedHeader} {
			for _, v := range list {
				if strings.Count(v, "*") > 1 {
					return nil, errInvalidArgument("At most one * is allowed.", "CORSRule", v)
				}
			}
		}
		for _, v := range x.ExposeHeader {
			if strings.Contains(v, "*") {
				return nil, errInvalidArgument("ExposeHeader may not contain *.", "ExposeHeader", v)
			}
		}
		rules = append(rules, CORSRule{AllowedOrigins: x.AllowedOrigin, AllowedMethods: x.AllowedMethod,
			AllowedHeaders: x.AllowedHeader, ExposeHeaders: x.ExposeHeader, MaxAgeSeconds: x.MaxAgeSeconds})
	}
	return rules, nil
}

func (e *Emulator) writeBucketInfo(w http.ResponseWriter, bucketName string) {
	e.mu.Lock()
	c := e.conf(bucketName)
	created, bpa := c.created, c.blockPublicAccess
	e.mu.Unlock()
	type owner struct {
		DisplayName string
		ID          string
	}
	type info struct {
		Name              string
		Location          string
		CreationDate      string
		ExtranetEndpoint  string
		IntranetEndpoint  string
		StorageClass      string
		Owner             owner
		ACL               string `xml:"AccessControlList>Grant"`
		BlockPublicAccess bool
	}
	writeXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"BucketInfo"`
		Bucket  info
	}{Bucket: info{
		Name: bucketName, Location: "oss-" + e.region,
		CreationDate:     created.Format("2006-01-02T15:04:05.000Z"),
		ExtranetEndpoint: "oss-" + e.region + ".aliyuncs.com", IntranetEndpoint: "oss-" + e.region + "-internal.aliyuncs.com",
		StorageClass: "Standard", Owner: owner{ownerID, ownerID}, ACL: "private", BlockPublicAccess: bpa,
	}})
}
