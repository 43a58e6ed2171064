package placement

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		spec string // as for shard()
		want string // fmt of the Rules, or the error text after "invalid tags: "
	}{
		{"", "{Members:{Name: Count:0 Filters:[]} Groups:[] Vary:[] Cover:[]}"},
		{"member=3", "{Members:{Name: Count:3 Filters:[]} Groups:[] Vary:[] Cover:[]}"},
		{"member=3;geo:region=us-central1;ssd vary=geo:zone,rack",
			"{Members:{Name: Count:3 Filters:[geo:region=us-central1 ssd]} Groups:[] Vary:[geo:zone rack] Cover:[]}"},
		{"member=1 replica:zz=0 replica:a.b-c_1=6;class=reader cover=group=edge;x",
			"{Members:{Name: Count:1 Filters:[]} Groups:[{Name:a.b-c_1 Count:6 Filters:[class=reader]} {Name:zz Count:0 Filters:[]}] Vary:[] Cover:[group=edge x]}"},
		{"vary=zone", "placement:member is required with any other placement tag"},
		{"member=0", `placement:member="0": count "0" is not a whole number of at least 1`},
		{"member=-1", `placement:member="-1": count "-1" is not a whole number of at least 1`},
		{"member=", `placement:member="": count "" is not a whole number of at least 1`},
		{"member=3;", `placement:member="3;": empty filter`},
		{"member=3;=a", `placement:member="3;=a": filter "=a" has no key`},
		{"member=3;zone=", `placement:member="3;zone=": filter "zone=" has an empty value (write "zone" to require only the key)`},
		{"member=1 replica:r=-2", `placement:replica:r="-2": count "-2" is not a whole number of at least 0`},
		{"member=1 replica:=2", `placement:replica:="2": group name is empty`},
		{"member=1 replica:cover=2", `placement:replica:cover="2": group name "cover" is reserved for placement:cover`},
		{"member=1 replica:a/b=2", `placement:replica:a/b="2": group name "a/b" may hold only letters, digits, '-', '_' and '.'`},
		{"member=1 vary=", `placement:vary="": vary needs at least one tag key`},
		{"member=1 vary=zone=a", `placement:vary="zone=a": "zone=a" is a filter; vary lists tag keys only`},
		{"member=1 vary=zone;zone", `placement:vary="zone;zone": key "zone" is listed twice`},
		{"member=1 cover=", `placement:cover="": cover needs at least one host filter`},
		{"member=1 members=3", `placement:members="3": unknown placement tag`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			r, err := ParseRules(shard(1, tt.spec).Tags)
			got := fmt.Sprintf("%+v", r)
			if err != nil {
				if !errors.Is(err, ErrInvalidTags) {
					t.Errorf("error %v does not wrap ErrInvalidTags", err)
				}
				got = strings.TrimPrefix(err.Error(), ErrInvalidTags.Error()+": ")
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestParseRulesSpaces checks that spaces around counts, keys and values
// are trimmed.
func TestParseRulesSpaces(t *testing.T) {
	r, err := ParseRules(map[string]string{
		TagMember: " 3 ; geo:region = us-central1 ; ssd ",
		TagVary:   " geo:zone , rack ; ",
	})
	want := "{Members:{Name: Count:3 Filters:[geo:region=us-central1 ssd]} Groups:[] Vary:[geo:zone rack] Cover:[]}"
	if got := fmt.Sprintf("%+v", r); err != nil || got != want {
		t.Fatalf("got %s, %v\nwant %s", got, err, want)
	}
}

func TestParseRulesIgnoresOtherTags(t *testing.T) {
	if _, err := ParseRules(map[string]string{"owner": "me", "placement:member": "1"}); err != nil {
		t.Fatal(err)
	}
	if HasRules(map[string]string{"owner": "me"}) {
		t.Fatal("HasRules without placement tags")
	}
}
