package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

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

// APIKey is one configured key. Its secret is kept only as a hash.
type APIKey struct {
	Role Role
	// Name identifies the key in logs and the audit trail; it is never the secret.
	Name string
	hash [32]byte
}

// DevAPIKeys are the keys used when none are configured: for a laptop, never for a network.
const DevAPIKeys = "admin:dev-admin,checkout:dev-checkout,analyst:dev-analyst"

// ParseAPIKeys reads "role:SECRET" or "role:name:SECRET" entries separated by commas.
func ParseAPIKeys(s string) ([]APIKey, error) {
	var keys []APIKey
	count := map[Role]int{}
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
		switch role {
		case RoleAdmin, RoleCheckout, RoleAnalyst:
		default:
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
		if secret == "" {
			return nil, fmt.Errorf("entry %d: empty secret", i+1)
		}
		keys = append(keys, APIKey{Role: role, Name: name, hash: sha256.Sum256([]byte(secret))})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	return keys, nil
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
