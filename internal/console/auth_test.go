package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apptest"
)

func TestSignInSetsAStrictHttpOnlySessionCookieAndKeepsNoSecret(t *testing.T) {
	e := newEnv(t)
	u := e.anonymous()
	p := u.signIn(adminKey)
	p.wantRedirect("/console/experiments")
	var session *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "xsell_console" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("no session cookie in %v", p.header["Set-Cookie"])
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", session)
	}
	if strings.Contains(session.Value, adminKey) || len(session.Value) < 40 {
		t.Errorf("the cookie should hold a random id, got %q", session.Value)
	}
	// The table keeps the id's hash, the key's name and role; never the id, never the key.
	var idHash []byte
	var role, name string
	if err := e.db.QueryRow(`SELECT id_hash, role, key_name FROM console_sessions`).Scan(&idHash, &role, &name); err != nil {
		t.Fatal(err)
	}
	if role != "admin" || name != "ops" || strings.Contains(string(idHash), session.Value) {
		t.Errorf("stored session: role %q name %q", role, name)
	}
	list := u.get("/console/experiments").wantStatus(http.StatusOK)
	list.wantText("header .who", "ops")
	if strings.Contains(list.body, adminKey) {
		t.Error("a page shows the API key")
	}
}

func TestSignInOverTLSProxyMarksTheCookieSecure(t *testing.T) {
	e := newEnv(t)
	u := e.anonymous()
	form := u.get("/console/signin")
	token, _ := form.doc.Find(`input[name="csrf_token"]`).Attr("value")
	req, _ := http.NewRequest(http.MethodPost, e.url+"/console/signin", strings.NewReader(url.Values{"api_key": {adminKey}, "csrf_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	// The sign-in token cookie was set for plain HTTP; send it by hand as the browser would.
	for _, c := range u.client.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	p := u.do(req)
	p.wantStatus(http.StatusSeeOther)
	got := strings.Join(p.header["Set-Cookie"], "\n")
	if !strings.Contains(got, "__Host-xsell_console=") || !strings.Contains(got, "Secure") || !strings.Contains(got, "Path=/;") {
		t.Errorf("over TLS want a __Host- cookie, Secure, Path=/; got\n%s", got)
	}
}

func TestSignInRefusesUnknownAndCheckoutKeysBesideTheField(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		key    string
		status int
		says   string
	}{
		{"not-a-key", http.StatusUnauthorized, "not one of the server's API keys"},
		{checkoutKey, http.StatusForbidden, "checkout key"},
		{"", http.StatusBadRequest, "Enter an API key"},
	} {
		p := e.anonymous().signIn(tc.key).wantStatus(tc.status)
		p.wantText("#api_key-error", tc.says)
		if v, _ := p.doc.Find("#api_key").Attr("aria-describedby"); v != "api_key-error" {
			t.Errorf("key %q: the input is not described by its error", tc.key)
		}
	}
	if n := e.count(`SELECT count(*) FROM console_sessions`); n != 0 {
		t.Errorf("%d sessions opened by refused keys", n)
	}
}

func TestSignInWithoutItsTokenIsRefused(t *testing.T) {
	e := newEnv(t)
	u := e.anonymous()
	u.get("/console/signin")
	u.post("/console/signin", url.Values{"api_key": {adminKey}}).wantStatus(http.StatusForbidden)
	u.post("/console/signin", url.Values{"api_key": {adminKey}, "csrf_token": {"forged"}}).wantStatus(http.StatusForbidden)
	if n := e.count(`SELECT count(*) FROM console_sessions`); n != 0 {
		t.Errorf("%d sessions opened without the form's token", n)
	}
}

func TestSignInGoesBackToThePageAskedForButNeverOffSite(t *testing.T) {
	e := newEnv(t)
	u := e.anonymous()
	loc := u.get("/console/loyalty").wantRedirect("/console/signin?next=")
	next, _ := url.Parse(loc)
	form := u.get(loc)
	if v, _ := form.doc.Find(`input[name="next"]`).Attr("value"); v != "/console/loyalty" {
		t.Fatalf("next = %q, want /console/loyalty (from %s)", v, next)
	}
	u.submit(form, "/console/signin", url.Values{"api_key": {adminKey}, "next": {"/console/loyalty"}}).wantRedirect("/console/loyalty")
	for _, evil := range []string{"https://evil.example/", "//evil.example/console/", "/console/../v1/experiments"} {
		v := e.anonymous()
		f := v.get("/console/signin")
		got := v.submit(f, "/console/signin", url.Values{"api_key": {adminKey}, "next": {evil}}).header.Get("Location")
		if got != "/console/experiments" && !strings.HasPrefix(got, "/console/") || strings.Contains(got, "evil") || strings.Contains(got, "..") {
			t.Errorf("next=%q sent the user to %q", evil, got)
		}
	}
}

func TestSignOutEndsTheSessionEverywhere(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	p := u.get("/console/experiments").wantStatus(http.StatusOK)
	saved := u.client.Jar.Cookies(mustURL(t, e.url+"/console/"))
	u.submit(p, "/console/signout", url.Values{}).wantRedirect("/console/signin")
	if n := e.count(`SELECT count(*) FROM console_sessions`); n != 0 {
		t.Errorf("%d sessions left after sign-out", n)
	}
	// The old cookie, replayed, opens nothing.
	replay := e.anonymous()
	replay.client.Jar.SetCookies(mustURL(t, e.url+"/console/"), saved)
	replay.get("/console/experiments").wantRedirect("/console/signin")
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSessionsExpireOnTheServer(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	u.get("/console/experiments").wantStatus(http.StatusOK)
	e.clock.Advance(2*time.Hour + time.Second) // idle for longer than two hours
	u.get("/console/experiments").wantRedirect("/console/signin")

	v := e.signedIn(adminKey)
	for range 11 { // active every hour, so never idle
		e.clock.Advance(time.Hour)
		v.get("/console/experiments").wantStatus(http.StatusOK)
	}
	e.clock.Advance(time.Hour) // but a sign-in lasts 12 hours
	v.get("/console/experiments").wantRedirect("/console/signin")
}

func TestASessionEndsWhenItsKeyIsNoLongerConfigured(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(analystKey)
	u.get("/console/experiments").wantStatus(http.StatusOK)
	if _, err := e.db.Exec(`UPDATE console_sessions SET key_name = 'revoked'`); err != nil {
		t.Fatal(err)
	}
	u.get("/console/experiments").wantRedirect("/console/signin")
	if n := e.count(`SELECT count(*) FROM console_sessions`); n != 0 {
		t.Errorf("the session of a removed key is kept")
	}
}

func TestAPostWithoutAValidTokenIs403AndChangesNothing(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	form := url.Values{"key": {"sneaky"}, "name": {"x"}, "variant_count": {"2"},
		"variants[0].key": {"a"}, "variants[0].name": {"A"}, "variants[0].weight": {"0.5"}, "variants[0].strategy.type": {"none"},
		"variants[1].key": {"b"}, "variants[1].name": {"B"}, "variants[1].weight": {"0.5"}, "variants[1].strategy.type": {"none"}}
	p := u.post("/console/experiments/new", form).wantStatus(http.StatusForbidden)
	p.wantText(".problem", "nothing was changed")
	form.Set("csrf_token", "forged-token")
	u.post("/console/experiments/new", form).wantStatus(http.StatusForbidden)
	// Another session's token is no better.
	other := e.signedIn(adminKey).get("/console/experiments")
	tok, _ := other.doc.Find(`input[name="csrf_token"]`).Attr("value")
	form.Set("csrf_token", tok)
	u.post("/console/experiments/new", form).wantStatus(http.StatusForbidden)
	if n := e.count(`SELECT count(*) FROM experiments`); n != 0 {
		t.Errorf("a POST without its token stored %d experiments", n)
	}
	// Without any session, a POST is refused too, not redirected.
	e.anonymous().post("/console/experiments/new", form).wantStatus(http.StatusForbidden)
}

func TestAnAnalystSeesNoWriteControlAndTheServerRefusesTheWrite(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	u := e.signedIn(analystKey)
	for _, path := range []string{"/console/experiments", "/console/experiments/pdp", "/console/loyalty", "/console/bundles",
		"/console/loyalty/accounts?shopper=s-1", "/console/experiments/pdp/history"} {
		p := u.get(path).wantStatus(http.StatusOK)
		if n := p.doc.Find("[data-write]").Length(); n != 0 {
			t.Errorf("%s shows an analyst %d write controls", path, n)
		}
		if n := p.doc.Find(`form[method="post"] input:not([disabled]):not([type=hidden])`).Length(); n != 0 && path == "/console/loyalty" {
			t.Errorf("%s offers an analyst %d inputs to change", path, n)
		}
		p.wantText(".readonly-note", "change nothing")
	}
	u.get("/console/experiments/new").wantStatus(http.StatusForbidden)
	page := u.get("/console/experiments/pdp")
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/console/experiments/new", url.Values{"key": {"x"}}},
		{"/console/experiments/pdp/action/start", url.Values{"version": {"1"}}},
		{"/console/experiments/pdp/action/delete", url.Values{"version": {"1"}}},
		{"/console/loyalty/program", url.Values{"earn_rate": {"5"}, "point_value": {"1"}, "expiry_days": {"0"}, "pending_days": {"0"}}},
	} {
		u.submit(page, post.path, post.form).wantStatus(http.StatusForbidden).wantText(".problem", "change nothing")
	}
	if n := e.count(`SELECT count(*) FROM experiments WHERE status = 'draft'`); n != 1 {
		t.Errorf("the analyst's forged POSTs changed the experiment")
	}
	if n := e.count(`SELECT earn_rate FROM loyalty_program`); n != 1 {
		t.Errorf("the analyst's forged POST changed the loyalty program")
	}
}

func TestPagesCarrySecurityHeaders(t *testing.T) {
	e := newEnv(t)
	p := e.anonymous().get("/console/signin").wantStatus(http.StatusOK)
	for h, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	} {
		if !strings.Contains(p.header.Get(h), want) {
			t.Errorf("%s = %q, want %q", h, p.header.Get(h), want)
		}
	}
}

func TestUnknownPagesAre404Pages(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	u.get("/console/nope").wantStatus(http.StatusNotFound).wantText("h1", "Not Found")
	u.get("/console/experiments/missing").wantStatus(http.StatusNotFound).wantText(".problem", `no experiment "missing"`)
	if p := e.anonymous().get("/console"); p.status != http.StatusMovedPermanently || p.header.Get("Location") != "/console/" {
		t.Errorf("/console: status %d to %q", p.status, p.header.Get("Location"))
	}
}

func TestADatabaseOutageIsA503WithRetryAfter(t *testing.T) {
	e := newEnvWith(t, apptest.Options{Proxy: true})
	u := e.signedIn(adminKey)
	u.get("/console/experiments").wantStatus(http.StatusOK)
	e.proxy.Stop()
	p := u.get("/console/experiments").wantStatus(http.StatusServiceUnavailable)
	if p.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	p.wantText("h1", "Service Unavailable")
	e.proxy.Start()
	u.get("/console/experiments").wantStatus(http.StatusOK)
}
