package httpapi

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/xsell/xsell/internal/apperr"
)

// RateLimit is how many requests per second each key of a role may make, and how many it may
// make at once after a pause (the token bucket's size).
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// RateLimits holds a limit per role; a role without one, or with 0 per second, is not limited.
type RateLimits map[Role]RateLimit

// DefaultRateLimits leaves checkout unlimited (its traffic is the shop's) and bounds what a
// leaked admin or analyst key can do.
const DefaultRateLimits = "checkout=0,admin=50,analyst=20"

// ParseRateLimits reads "role=RATE" or "role=RATE:BURST" entries separated by commas: RATE
// requests per second (0 for none), BURST by default one second's worth (at least 1).
func ParseRateLimits(s string) (RateLimits, error) {
	limits := RateLimits{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		role, spec, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want role=RATE or role=RATE:BURST", entry)
		}
		r := Role(role)
		if !r.valid() {
			return nil, fmt.Errorf("%q: unknown role %q (want admin, checkout or analyst)", entry, role)
		}
		if _, dup := limits[r]; dup {
			return nil, fmt.Errorf("%q: a second limit for %s", entry, role)
		}
		rateText, burstText, hasBurst := strings.Cut(spec, ":")
		perSecond, err := strconv.ParseFloat(rateText, 64)
		if err != nil || perSecond < 0 || math.IsInf(perSecond, 0) || math.IsNaN(perSecond) {
			return nil, fmt.Errorf("%q: the rate must be a number of requests per second ≥ 0", entry)
		}
		burst := max(1, int(math.Ceil(perSecond)))
		if hasBurst {
			if burst, err = strconv.Atoi(burstText); err != nil || burst < 1 {
				return nil, fmt.Errorf("%q: the burst must be a whole number ≥ 1", entry)
			}
		}
		limits[r] = RateLimit{PerSecond: perSecond, Burst: burst}
	}
	return limits, nil
}

// withLimiters gives each key a token bucket of its own, at its role's limit: keys do not
// share a budget, so one busy key cannot starve another of the same role.
func withLimiters(keys []APIKey, limits RateLimits) []APIKey {
	out := make([]APIKey, len(keys))
	copy(out, keys)
	for i := range out {
		if l, ok := limits[out[i].Role]; ok && l.PerSecond > 0 {
			out[i].limiter = rate.NewLimiter(rate.Limit(l.PerSecond), l.Burst)
		}
	}
	return out
}

// overLimit takes a token from the key's bucket and reports false; when the bucket is empty it
// answers 429 rate_limited, saying when a token will be there (Retry-After), and reports true.
func (s *Server) overLimit(c *gin.Context, key *APIKey) bool {
	if key.limiter == nil {
		return false
	}
	now := time.Now()
	r := key.limiter.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait == 0 {
		return false
	}
	r.CancelAt(now)
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Header("Retry-After", strconv.Itoa(secs))
	s.renderError(c, apperr.New(apperr.RateLimited, "the %s key %q is over its limit of %g requests per second; retry in %d s",
		key.Role, key.Name, float64(key.limiter.Limit()), secs))
	return true
}
