package console

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/httpapi"
)

// signinCookie holds the sign-in form's CSRF token until the form comes back (a session has
// none yet): a page of another site cannot read it, nor (SameSite=Strict) send it.
const signinCookie = "xsell_console_signin"

// signinView is the data of the sign-in page.
type signinView struct {
	Token string
	Next  string
	Error string
}

func (c *Console) signinPage(q *request) error {
	if sess, err := c.currentSession(q); err == nil && sess != nil {
		return q.redirect(safeNext(q.r.URL.Query().Get("next")))
	}
	c.showSignin(q, http.StatusOK, "")
	return nil
}

// showSignin renders the form with a fresh token in its cookie.
func (c *Console) showSignin(q *request, status int, problem string) {
	token := randomToken()
	http.SetCookie(q.w, &http.Cookie{Name: signinCookie, Value: token, Path: Base, HttpOnly: true,
		Secure: c.secure(q.r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	next := q.r.URL.Query().Get("next")
	if q.r.Method == http.MethodPost {
		next = q.r.PostFormValue("next")
	}
	c.renderView(q, status, "signin", view{Title: "Sign in", Nav: "signin",
		Data: signinView{Token: token, Next: safeNext(next), Error: problem}})
}

func (c *Console) signin(q *request) error {
	ck, err := q.r.Cookie(signinCookie)
	if err != nil || !sameToken(q.r.PostFormValue(csrfField), ck.Value) {
		return errBadCSRF
	}
	secret := strings.TrimSpace(q.r.PostFormValue("api_key"))
	if secret == "" {
		c.showSignin(q, http.StatusBadRequest, "Enter an API key.")
		return nil
	}
	key, ok := httpapi.Identify(c.cfg.Keys, secret)
	switch {
	case !ok && !c.signins.Allow():
		q.w.Header().Set("Retry-After", "1")
		return apperr.New(apperr.RateLimited, "too many failed sign-ins on this server; wait a few seconds and try again")
	case !ok:
		c.showSignin(q, http.StatusUnauthorized, "This key is not one of the server's API keys.")
		return nil
	case key.Role == httpapi.RoleCheckout:
		c.showSignin(q, http.StatusForbidden, "This is a checkout key: it is for the shop's checkout, not for the console. Sign in with an admin or analyst key.")
		return nil
	}
	id, _, err := c.sessions.create(q.ctx(), key)
	if err != nil {
		return err
	}
	http.SetCookie(q.w, &http.Cookie{Name: signinCookie, Value: "", Path: Base, MaxAge: -1, HttpOnly: true,
		Secure: c.secure(q.r), SameSite: http.SameSiteStrictMode})
	http.SetCookie(q.w, c.cookie(q.r, id, int(c.cfg.SessionTTL.Seconds())))
	c.log.Info("console: signed in", "key", key.Name, "role", string(key.Role))
	return q.redirect(safeNext(q.r.PostFormValue("next")))
}

// cookie is the session cookie: HttpOnly, SameSite=Strict, Secure over TLS, for the whole
// site when __Host- (which requires Path=/), else for the console only.
func (c *Console) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	ck := &http.Cookie{Name: c.sessionCookie(r), Value: value, Path: Base, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
	if ck.Secure {
		ck.Path = "/"
	}
	return ck
}

func (c *Console) signout(q *request) error {
	if ck, err := q.r.Cookie(c.sessionCookie(q.r)); err == nil {
		if err := c.sessions.delete(q.ctx(), ck.Value); err != nil {
			return err
		}
	}
	http.SetCookie(q.w, c.cookie(q.r, "", -1))
	q.sess = nil
	return q.redirect(Base + "signin?done=signedout")
}

// safeNext keeps a post-sign-in destination inside the console, so that a link cannot send a
// user elsewhere after they sign in.
func safeNext(next string) string {
	fallback := Base + "experiments"
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || strings.ContainsAny(next, "\\\r\n") {
		return fallback
	}
	clean := path.Clean(u.Path)
	if (u.Path != clean && u.Path != clean+"/") || !strings.HasPrefix(clean+"/", Base) || strings.HasPrefix(clean, Base+"signin") {
		return fallback // dot segments, doubled slashes, or outside the console
	}
	return next
}
