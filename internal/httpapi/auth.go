package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/xsell/xsell/internal/apperr"
)

// Role is what a key may do.
type Role string

// The roles of API keys.
const (
	RoleAdmin    Role = "admin"    // defines and runs experiments, settles the loyalty program
	RoleCheckout Role = "checkout" // asks for variants, reports events, earns and redeems points
	RoleAnalyst  Role = "analyst"  // reads experiments and accounts
)

func (r Role) valid() bool { return r == RoleAdmin || r == RoleCheckout || r == RoleAnalyst }

// APIKey is one configured key. Its secret is kept only as a hash.
type APIKey struct {
	Role Role
	// Name identifies the key in logs and the audit trail; it is never the secret.
	Name    string
	hash    [32]byte
	limiter *rate.Limiter // the key's own request budget; nil when its role is not limited
}

// MinSecretLength is the shortest secret ParseAPIKeys accepts: 32 characters of a random
// alphabet cannot be guessed by trying.
const MinSecretLength = 32

// DevKeys are the keys used when none are configured, with the well-known secrets dev-admin,
// dev-checkout and dev-analyst: for a laptop's loopback address, never for a network.
func DevKeys() []APIKey {
	keys, err := parseAPIKeys("admin:dev-admin,checkout:dev-checkout,analyst:dev-analyst", 0)
	if err != nil {
		panic(err) // a constant that parses
	}
	return keys
}

// ParseAPIKeys reads "role:SECRET" or "role:name:SECRET" entries separated by commas; each
// secret has at least MinSecretLength characters and is used once.
func ParseAPIKeys(s string) ([]APIKey, error) {
	return parseAPIKeys(s, MinSecretLength)
}

func parseAPIKeys(s string, minSecret int) ([]APIKey, error) {
	var keys []APIKey
	count := map[Role]int{}
	seen := map[[32]byte]int{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("entry %d: want role:SECRET or role:name:SECRET", i+1)
		}
		role := Role(parts[0])
		if !role.valid() {
			return nil, fmt.Errorf("entry %d: unknown role %q (want admin, checkout or analyst)", i+1, parts[0])
		}
		count[role]++
		name := string(role) + "-" + strconv.Itoa(count[role])
		secret := parts[len(parts)-1]
		if len(parts) == 3 {
			name = parts[1]
			if name == "" {
				return nil, fmt.Errorf("entry %d: empty key name", i+1)
			}
		}
		if n := utf8.RuneCountInString(secret); n < minSecret {
			return nil, fmt.Errorf("entry %d: the secret has %d characters, want at least %d (such as: openssl rand -base64 33)", i+1, n, minSecret)
		}
		h := sha256.Sum256([]byte(secret))
		if j, dup := seen[h]; dup {
			return nil, fmt.Errorf("entry %d: the same secret as entry %d", i+1, j)
		}
		seen[h] = i + 1
		keys = append(keys, APIKey{Role: role, Name: name, hash: h})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	return keys, nil
}

// Identify finds the configured key with the given secret, for sign-ins that do not come
// through the Authorization header (the console's form).
func Identify(keys []APIKey, secret string) (APIKey, bool) {
	k, ok := identify(keys, secret)
	if !ok {
		return APIKey{}, false
	}
	return *k, true
}

// identify finds the key with the given secret. It compares against every key in constant
// time, so that neither the secret nor which key matched leaks through timing.
func identify(keys []APIKey, secret string) (*APIKey, bool) {
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range keys {
		if subtle.ConstantTimeCompare(h[:], keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, false
	}
	return &keys[found], true
}

// authenticate finds the caller's key from "Authorization: Bearer SECRET" and lets through only
// the given roles.
func (s *Server) authenticate(roles ...Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		auth := c.GetHeader("Authorization")
		secret, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || secret == "" {
			c.Header("WWW-Authenticate", `Bearer realm="xsell"`)
			s.renderError(c, apperr.New(apperr.Unauthorized, "an API key is required: Authorization: Bearer SECRET"))
			return
		}
		key, ok := identify(s.cfg.APIKeys, secret)
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="xsell", error="invalid_token"`)
			s.renderError(c, apperr.New(apperr.Unauthorized, "unknown API key"))
			return
		}
		if s.overLimit(c, key) {
			return
		}
		for _, r := range roles {
			if key.Role == r {
				c.Next()
				return
			}
		}
		s.renderError(c, apperr.New(apperr.Forbidden, "the %s key %q may not do this (allowed: %s)", key.Role, key.Name, joinRoles(roles)))
	}
}

func joinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// caller returns the key whose secret the request carries (on an authenticated route, the key
// authenticate let through), or the zero key. It identifies the key again rather than having
// authenticate store it in the context: few handlers ask, and storing costs every assignment a
// map allocation.
func (s *Server) caller(c *gin.Context) APIKey {
	secret, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok {
		return APIKey{}
	}
	if k, ok := identify(s.cfg.APIKeys, secret); ok {
		return *k
	}
	return APIKey{}
}
