package caddyoss

import (
	"fmt"
	"net/url"
	"strings"
)

// ossRegions are the region ids of OSS's "Regions and endpoints" page
// (public cloud, finance and government clouds, local regions), as V4
// signatures and the plugin's region option spell them. A region OSS
// opens later is accepted with region_unlisted.
var ossRegions = map[string]bool{
	// Chinese mainland.
	"cn-hangzhou": true, "cn-shanghai": true, "cn-nanjing": true, "cn-fuzhou": true,
	"cn-wuhan-lr": true, "cn-qingdao": true, "cn-beijing": true, "cn-zhangjiakou": true,
	"cn-huhehaote": true, "cn-wulanchabu": true, "cn-shenzhen": true, "cn-heyuan": true,
	"cn-guangzhou": true, "cn-chengdu": true,
	// Finance and government clouds.
	"cn-hangzhou-finance": true, "cn-shanghai-finance-1": true, "cn-shenzhen-finance-1": true,
	"cn-beijing-finance-1": true, "cn-north-2-gov-1": true,
	// Outside the Chinese mainland.
	"cn-hongkong": true, "ap-northeast-1": true, "ap-northeast-2": true,
	"ap-southeast-1": true, "ap-southeast-2": true, "ap-southeast-3": true,
	"ap-southeast-5": true, "ap-southeast-6": true, "ap-southeast-7": true,
	"ap-south-1": true, "us-west-1": true, "us-east-1": true, "na-south-1": true,
	"eu-central-1": true, "eu-west-1": true, "me-east-1": true, "me-central-1": true,
}

// checkRegionID checks a region id without placeholders: the endpoint
// form (oss-cn-hangzhou) is refused with the id to write instead, and an
// id OSS does not list is refused with the closest one, unless unlisted is
// set.
func checkRegionID(r string, unlisted bool) error {
	if id, ok := strings.CutPrefix(r, "oss-"); ok {
		return fmt.Errorf("region: use the region id (%q), not %q", id, r)
	}
	if ossRegions[r] || unlisted {
		return nil
	}
	if near := closestRegion(r); near != "" {
		return fmt.Errorf("region: %q is not an OSS region id; did you mean %q? (for a region OSS opened after this release, write 'region %s unlisted', in JSON \"region_unlisted\": true)", r, near, r)
	}
	return fmt.Errorf("region: %q is not an OSS region id such as cn-hangzhou (for a region OSS opened after this release, write 'region %s unlisted', in JSON \"region_unlisted\": true)", r, r)
}

// closestRegion is the listed id nearest to r by edit distance, when it is
// near enough to be a typo (at most a third of the id's length).
func closestRegion(r string) string {
	lower := strings.ToLower(strings.TrimSpace(r))
	if ossRegions[lower] {
		return lower
	}
	best, bestDist := "", len(lower)/3+1
	for id := range ossRegions {
		d := editDistance(lower, id)
		if d < bestDist || d == bestDist && best != "" && id < best {
			best, bestDist = id, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two ASCII strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// endpointRegion reads the region of an OSS endpoint host:
// oss-<region>.aliyuncs.com, oss-<region>-internal.aliyuncs.com or the
// dual-stack <region>.oss.aliyuncs.com. ok is false for any other host
// (custom domains, emulators, the accelerate endpoints, which serve every
// region), which is not checked.
func endpointRegion(host string) (region string, ok bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if r, found := strings.CutSuffix(host, ".oss.aliyuncs.com"); found && !strings.Contains(r, ".") {
		return r, r != ""
	}
	name, found := strings.CutSuffix(host, ".aliyuncs.com")
	if !found || strings.Contains(name, ".") {
		return "", false
	}
	r, found := strings.CutPrefix(name, "oss-")
	if !found {
		return "", false
	}
	r = strings.TrimSuffix(r, "-internal")
	if r == "" || r == "accelerate" || r == "accelerate-overseas" {
		return "", false
	}
	return r, true
}

// checkEndpointRegion refuses an endpoint or upload_url on an OSS host of
// another region than region: OSS would answer every signed request with a
// region or signature error. Only hosts of OSS's own endpoint forms are
// checked; a bucket's virtual-hosted name (<bucket>.oss-<region>...) is
// read after its first label, and must name the configured bucket.
func checkEndpointRegion(name, raw, region, bucket string) error {
	if raw == "" || region == "" || strings.Contains(raw, "{") {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return nil // the URL checks report it
	}
	host := u.Hostname()
	r, ok := endpointRegion(host)
	if !ok && name == "upload_url" {
		if label, rest, found := strings.Cut(host, "."); found {
			if r, ok = endpointRegion(rest); ok && bucket != "" && !strings.Contains(bucket, "{") && !strings.EqualFold(label, bucket) {
				return fmt.Errorf("upload_url: %q is bucket %q's address, not bucket %q's; write https://%s.%s or leave upload_url unset",
					raw, label, bucket, bucket, rest)
			}
		}
	}
	if !ok || r == region {
		return nil
	}
	return fmt.Errorf("%s: %q is an endpoint of region %s, but region is %s; use https://oss-%s.aliyuncs.com (or its -internal form), or set region %s",
		name, raw, r, region, region, r)
}
