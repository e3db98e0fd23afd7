package caddyoss

import (
	"strings"
	"testing"
)

func TestBodyTemplateRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, tpl string
		json      bool
		body      string            // as OSS renders it
		want      map[string]string // variable → value
	}{
		{"default form", (&CallbackConfig{Vars: map[string]string{"user": "u"}}).defaultBody(), false,
			"bucket=b&object=u%2Fa%20b.png&etag=ABC&size=12&mimeType=image%2Fpng&user=al+ice",
			map[string]string{"bucket": "b", "object": "u/a b.png", "etag": "ABC", "size": "12", "mimeType": "image/png", "x:user": "al ice"}},
		{"default json", (&CallbackConfig{BodyType: bodyTypeJSON}).defaultBody(), true,
			`{"bucket":"b","object":"u/a.png","etag":"ABC","size":12,"mimeType":"image/png"}`,
			map[string]string{"bucket": "b", "object": "u/a.png", "etag": "ABC", "size": "12", "mimeType": "image/png"}},
		{"constants", `{"kind":"upload","v":2,"ok":true,"n":null,"object":${object},"vpc":${vpcId}}`, true,
			`{"kind":"upload","v":2,"ok":true,"n":null,"object":"o","vpc":null}`,
			map[string]string{"object": "o", "vpcId": ""}},
		{"form constants", "from=oss%20cb&object=${object}", false, "from=oss+cb&object=o", map[string]string{"object": "o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := parseBodyTemplate(tc.tpl, tc.json)
			if err != nil {
				t.Fatal(err)
			}
			again, err := parseBodyTemplate(tpl.render(), tc.json)
			if err != nil || again.render() != tpl.render() {
				t.Fatalf("render %q does not parse back: %v", tpl.render(), err)
			}
			got, err := tpl.parseBody([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %v", got)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// A body that does not follow the template field for field is refused:
// an uploader with STS credentials writes its own template.
func TestBodyTemplateRefusesOtherShapes(t *testing.T) {
	form, _ := parseBodyTemplate("bucket=${bucket}&object=${object}&kind=upload&user=${x:user}", false)
	js, _ := parseBodyTemplate(`{"object":${object},"kind":"upload","user":${x:user}}`, true)
	for _, tc := range []struct {
		tpl  *bodyTemplate
		body string
	}{
		{form, "bucket=b&object=o&kind=upload"},
		{form, "bucket=b&object=o&kind=upload&user=u&admin=1"},
		{form, "bucket=b&object=o&object=p&kind=upload&user=u"},
		{form, "bucket=b&object=o&kind=upload&user=u&user=v"},
		{form, "bucket=b&object=o&kind=download&user=u"},
		{form, "bucket=b&object=o&Kind=upload&user=u"},
		{form, "bucket=b&object=%zz&kind=upload&user=u"},
		{form, ""},
		{form, `{"object":"o"}`},
		{js, `{"object":"o","kind":"upload"}`},
		{js, `{"object":"o","kind":"upload","user":"u","admin":true}`},
		{js, `{"object":"o","object":"p","kind":"upload","user":"u"}`},
		{js, `{"object":"o","kind":"other","user":"u"}`},
		{js, `{"object":{"a":1},"kind":"upload","user":"u"}`},
		{js, `{"object":["o"],"kind":"upload","user":"u"}`},
		{js, `{"object":"o","kind":"upload","user":"u"} {"x":1}`},
		{js, `{"object":"o","kind":"upload","user":"u"`},
		{js, `object=o&kind=upload&user=u`},
	} {
		if v, err := tc.tpl.parseBody([]byte(tc.body)); err == nil {
			t.Errorf("%q accepted as %v", tc.body, v)
		}
	}
}

func TestBodyTemplateRefusesUncheckable(t *testing.T) {
	for _, tc := range []struct {
		tpl  string
		json bool
		want string
	}{
		{"", false, "empty"},
		{"object", false, "name=value"},
		{"object=${object}&object=${etag}", false, "twice"},
		{"a=${object}&b=${object}", false, "used by both"},
		{"object=${nope}", false, "not an OSS variable"},
		{"object=${x:User}", false, "not an OSS variable"},
		{"object=x${object}", false, "one whole"},
		{`["object"]`, true, "flat JSON object"},
		{`{"object":${object}} x`, true, "nothing after"},
		{`{"object":${object}${size}}`, true, ""},
		{`{"o":"${object}"}`, true, "without quotes"},
	} {
		_, err := parseBodyTemplate(tc.tpl, tc.json)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.tpl, err, tc.want)
		}
	}
}
