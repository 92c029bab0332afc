package httpapi

import (
	"strings"
	"testing"
)

func TestParseAPIKeys(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, MinSecretLength) }
	keys, err := ParseAPIKeys("admin:ops:" + long("a") + ", admin:" + long("b") + ",checkout:" + long("c"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0].Name != "ops" || keys[1].Name != "admin-2" || keys[2].Role != RoleCheckout {
		t.Fatalf("keys = %+v", keys)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "no keys"},
		{"root:" + long("a"), `unknown role "root"`},
		{"admin", "want role:SECRET"},
		{"admin:", "the secret has 0 characters"},
		{"admin::" + long("a"), "empty key name"},
		{"a:b:c:d", "want role:SECRET"},
		{"admin:" + long("a")[1:], "the secret has 31 characters, want at least 32"},
		{"admin:dev-admin", "want at least 32"},
		{"admin:" + long("a") + ",checkout:" + long("a"), "entry 2: the same secret as entry 1"},
	} {
		_, err := ParseAPIKeys(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAPIKeys(%q) = %v, want an error mentioning %q", tc.in, err, tc.want)
		}
		if err != nil && len(tc.in) > 20 && strings.Contains(err.Error(), long("a")[:20]) {
			t.Errorf("the error for %q shows the secret: %v", tc.in, err)
		}
	}
}

// TestDevKeysAreTheWellKnownOnes: the development keys, short as they are, still work for a
// laptop (the server refuses them off loopback).
func TestDevKeysAreTheWellKnownOnes(t *testing.T) {
	keys := DevKeys()
	for secret, role := range map[string]Role{"dev-admin": RoleAdmin, "dev-checkout": RoleCheckout, "dev-analyst": RoleAnalyst} {
		k, ok := identify(keys, secret)
		if !ok || k.Role != role {
			t.Errorf("%s identifies %+v (%v), want role %s", secret, k, ok, role)
		}
	}
}
