package freeport

import "testing"

func TestAddrsNeverRepeat(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		addrs, err := Addrs(5)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if seen[a] {
				t.Fatalf("%s handed out twice", a)
			}
			seen[a] = true
		}
	}
}
