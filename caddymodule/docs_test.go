package caddymodule_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestDocsCaddyfilesAreFormatted: every Caddyfile the README shows, and
// Caddyfile.example, is as `caddy fmt` writes it, so that what an admin
// copies is what `caddy fmt` would leave alone.
func TestDocsCaddyfilesAreFormatted(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllSubmatchIndex(readme, -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d caddyfile blocks in README.md; the pattern is broken", len(blocks))
	}
	for _, m := range blocks {
		block := readme[m[2]:m[3]]
		if got := caddyfile.Format(block); string(got) != string(block) {
			line := 1 + strings.Count(string(readme[:m[0]]), "\n")
			t.Errorf("README.md line %d: the Caddyfile is not as caddy fmt writes it; want:\n%s", line, got)
		}
	}
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := caddyfile.Format(example); string(got) != string(example) {
		t.Errorf("Caddyfile.example is not as caddy fmt writes it; want:\n%s", got)
	}
}
