// Package console is the web console at /console/: server-rendered pages over the same
// services as the API, for growth teams and analysts who would rather not write JSON.
//
// Pages are html/template files and assets embedded in the binary; every page works without
// JavaScript. Sign-in takes an API key and opens a session kept in Postgres; the session's
// role is the key's, and every form that changes something carries the session's CSRF token.
package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/time/rate"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/results"
)

//go:embed templates static
var assets embed.FS

// Base is where the console is mounted.
const Base = "/console/"

// DefaultSessionTTL is how long a sign-in lasts, whatever the activity.
const DefaultSessionTTL = 12 * time.Hour

// Config is the console's settings.
type Config struct {
	// Keys are the API keys that may sign in (admin and analyst keys do; checkout keys don't).
	Keys []httpapi.APIKey
	// SessionTTL is how long a session lasts (DefaultSessionTTL when zero); one unused for
	// two hours, or SessionTTL when shorter, ends sooner.
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP, for a console behind a proxy
	// that terminates TLS; over TLS they are Secure anyway.
	SecureCookies bool
	Clock         func() time.Time
}

// Deps are the services the pages read and write.
type Deps struct {
	DB          *sqlx.DB
	Log         *slog.Logger
	Experiments *experiments.Store
	// Assignments, when set, is reloaded after each experiment write, so that this server
	// answers /v1/assign with the change at once (as the API does).
	Assignments *experiments.Cache
	Loyalty     *loyalty.Service
	Results     *results.Scheduler
}

// Console serves the pages.
type Console struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	pages    pages
	mux      *http.ServeMux
	// signins bounds failed sign-ins, server-wide: secrets are too long to guess anyway, but
	// a flood of tries is refused rather than answered one by one.
	signins *rate.Limiter
}

// New builds the console.
func New(cfg Config, deps Deps) (*Console, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.DB == nil || deps.Experiments == nil || deps.Loyalty == nil || deps.Results == nil {
		return nil, errors.New("console: DB, Experiments, Loyalty and Results are required")
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, deps: deps, log: deps.Log, now: cfg.Clock, pages: pg, mux: http.NewServeMux(),
		sessions: &sessions{db: deps.DB, now: cfg.Clock, ttl: cfg.SessionTTL, idle: min(2*time.Hour, cfg.SessionTTL)},
		signins:  rate.NewLimiter(10, 20),
	}
	c.routes()
	return c, nil
}

// role says who may use a route: anyone (sign-in, assets), any signed-in user, or admins.
type role int

const (
	public role = iota
	reader
	admin
)

// request is one request with its session, as handlers see it.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	sess *session
}

func (q *request) ctx() context.Context { return q.r.Context() }

// handler serves one page; an error is rendered as an error page.
type handler func(q *request) error

func (c *Console) routes() {
	static, _ := fs.Sub(assets, "static")
	files := http.StripPrefix(Base+"static/", http.FileServerFS(static))
	c.mux.HandleFunc("GET "+Base+"static/", func(w http.ResponseWriter, r *http.Request) {
		// Embedded assets change only with the binary.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
	c.handle("GET "+Base+"{$}", reader, func(q *request) error { return q.redirect(Base + "experiments") })
	c.handle("GET "+Base+"signin", public, c.signinPage)
	c.handle("POST "+Base+"signin", public, c.signin)
	c.handle("POST "+Base+"signout", reader, c.signout)
	c.experimentRoutes()
	c.loyaltyRoutes()
	c.handle("GET "+Base+"bundles", reader, c.bundles)
	c.handle("POST "+Base+"bundles/refresh", reader, c.refreshBundles)
	c.handle(Base, public, func(q *request) error {
		return apperr.New(apperr.NotFound, "there is no page %s", q.r.URL.Path)
	})
}

// handle registers a page for the given role. Every POST must carry the session's CSRF
// token (sign-in its own); one without gets 403 before its handler runs.
func (c *Console) handle(pattern string, who role, h handler) {
	post := strings.HasPrefix(pattern, "POST ")
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		q := &request{w: w, r: r}
		c.serve(q, who, post, h)
	})
}

func (c *Console) serve(q *request, who role, post bool, h handler) {
	var err error
	if who != public {
		if q.sess, err = c.currentSession(q); err != nil {
			c.fail(q, err)
			return
		}
		if q.sess == nil {
			if post {
				c.fail(q, apperr.New(apperr.Forbidden, "you are not signed in (or your session ended): sign in and try again; nothing was changed"))
				return
			}
			_ = q.redirect(Base + "signin?next=" + url.QueryEscape(q.r.URL.RequestURI()))
			return
		}
	}
	if post && who != public && !sameToken(q.r.PostFormValue(csrfField), q.sess.CSRF) {
		c.fail(q, errBadCSRF)
		return
	}
	if who == admin && !q.sess.Admin() {
		c.fail(q, apperr.New(apperr.Forbidden, "the %s key %q can read everything but change nothing; nothing was changed", q.sess.Role, q.sess.KeyName))
		return
	}
	if err := h(q); err != nil {
		c.fail(q, err)
	}
}

// csrfField is the name of every form's CSRF token field.
const csrfField = "csrf_token"

var errBadCSRF = apperr.New(apperr.Forbidden, "this form did not come from your console session (its security token is missing or stale): nothing was changed. Go back, reload the page and try again")

// sessionCookie is the name of the session cookie; __Host- makes the browser refuse it unless
// it is Secure, host-only and for the whole site, so it is used only over TLS.
func (c *Console) sessionCookie(r *http.Request) string {
	if c.secure(r) {
		return "__Host-xsell_console"
	}
	return "xsell_console"
}

// secure says whether the browser reached the console over TLS: directly, or through a proxy
// that says so (a client that claims it falsely only makes its own cookies unusable on
// plain HTTP).
func (c *Console) secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" || c.cfg.SecureCookies
}

// currentSession returns the request's session, or nil. A session whose key is no longer
// configured has ended.
func (c *Console) currentSession(q *request) (*session, error) {
	ck, err := q.r.Cookie(c.sessionCookie(q.r))
	if err != nil {
		return nil, nil
	}
	sess, err := c.sessions.lookup(q.ctx(), ck.Value)
	if err != nil || sess == nil {
		return nil, err
	}
	if !slices.ContainsFunc(c.cfg.Keys, func(k httpapi.APIKey) bool { return k.Role == sess.Role && k.Name == sess.KeyName }) {
		return nil, c.sessions.delete(q.ctx(), ck.Value)
	}
	return sess, nil
}

// ServeHTTP serves the console's pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Scripts and styles only from the console itself; SVG charts style their own elements.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "+
		"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

// redirect sends the browser to path with 303, so that a POST is followed by a GET.
func (q *request) redirect(path string) error {
	http.Redirect(q.w, q.r, path, http.StatusSeeOther)
	return nil
}

// fail renders err as an error page with its status, as the API maps codes; an outage is a
// 503 with Retry-After; errors that are not the user's are logged and shown without their text.
func (c *Console) fail(q *request, err error) {
	e := database.Answer(q.ctx(), err)
	if e == nil || e.Code == apperr.Internal || e.Code == apperr.Unavailable {
		c.log.LogAttrs(q.ctx(), slog.LevelError, "console request failed",
			slog.String("path", q.r.URL.Path), slog.String("request_id", q.w.Header().Get("X-Request-Id")),
			slog.String("error", err.Error()))
		if e == nil {
			e = &apperr.Error{Code: apperr.Internal, Message: "something went wrong on our side; the server log has the details"}
		}
	}
	if after := httpapi.RetryAfter(e.Code); after != "" {
		q.w.Header().Set("Retry-After", after)
	}
	status := httpapi.StatusOf(e.Code)
	c.render(q, status, "error", "Problem", errorPage{Status: status, StatusText: http.StatusText(status), Err: e,
		RequestID: q.w.Header().Get("X-Request-Id")})
}

// errorPage is the data of the error page.
type errorPage struct {
	Status     int
	StatusText string
	Err        *apperr.Error
	RequestID  string
}

// asAppErr finds the *apperr.Error in err's chain.
func asAppErr(err error, target **apperr.Error) bool { return errors.As(err, target) }
