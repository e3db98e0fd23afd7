package doctor

import (
	"strings"
	"testing"
)

func TestFindHandlers(t *testing.T) {
	cfg := `{"apps":{"http":{"servers":{
		"srv1":{"listen":[":8443"],"routes":[{"match":[{"host":["b.example.com"]}],"handle":[{"handler":"subroute","routes":[
			{"handle":[{"handler":"oss_upload","bucket":"b"}]}]}]}]},
		"srv0":{"listen":[":443"],"routes":[{"match":[{"host":["a.example.com","*.example.com"]}],"handle":[
			{"handler":"subroute","routes":[{"match":[{"path":["/oss/*"]}],"handle":[{"handler":"oss_upload","bucket":"a"}]}]}]},
			{"handle":[{"handler":"oss_upload","bucket":"c"}]}]},
		"srv2":{"listen":[":80"],"routes":[{"match":[{"host":["d.example.com"]}],"handle":[{"handler":"oss_upload","bucket":"d"}]}]}
	}}}}`
	found, err := FindHandlers([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		got = append(got, f.Label+" "+strings.Join(f.Origins, ",")+" "+string(f.Raw))
	}
	want := []string{
		`server srv0, site a.example.com *.example.com https://a.example.com {"handler":"oss_upload","bucket":"a"}`,
		`server srv0  {"handler":"oss_upload","bucket":"c"}`,
		`server srv1, site b.example.com https://b.example.com:8443 {"handler":"oss_upload","bucket":"b"}`,
		`server srv2, site d.example.com http://d.example.com {"handler":"oss_upload","bucket":"d"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
