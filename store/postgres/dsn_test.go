package postgres_test

import (
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/store/postgres"
)

func TestParseDSNNeverShowsThePassword(t *testing.T) {
	for _, dsn := range []string{
		"host=x password = S3cr3tPw port=abc",
		"host=x password= S3cr3tPw port=abc",
		`host=x password=S3c\ r3tPw port=abc`,
		`host=x password='S3c\' r3tPw' port=abc`,
		"postgres://u:S3c@r3tPw@host:bad/db",
		"postgres://u:S3cr3tPw@host:5432/db?sslmode=bogus",
		"postgres://u:S3cr3tPw@host:99999999/db",
		"postgres://u:S3cr3tPw@[::1/db",
		"host=x password='S3cr3tPw",
	} {
		_, err := postgres.ParseDSN(dsn)
		if err == nil {
			t.Errorf("%q parsed", dsn)
			continue
		}
		for _, part := range []string{"S3c", "r3tPw", "cr3t"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("error for %q shows %q: %v", dsn, part, err)
			}
		}

	}
}
