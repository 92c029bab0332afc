package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/results"
)

// The keys of the test server: the admin's is named ops, the analyst's reader.
const (
	adminKey    = apptest.AdminKey
	checkoutKey = apptest.CheckoutKey
	analystKey  = apptest.AnalystKey
)

// env is the whole server (internal/app's wiring) over a fresh database, its clock moved by
// hand and its results scheduler run by hand.
type env struct {
	t       testing.TB
	handler http.Handler // the whole server: API and console
	db      *sqlx.DB
	url     string
	clock   *apptest.Clock
	store   *experiments.Store
	loyalty *loyalty.Service
	sched   *results.Scheduler
	proxy   *apptest.Proxy // nil unless asked for
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env { return newEnvWith(t, apptest.Options{}) }

// newEnvWith is newEnv with server options (a cuttable database).
func newEnvWith(t testing.TB, o apptest.Options) *env {
	t.Helper()
	o.Now = time.Now().UTC().Truncate(time.Second)
	o.APIKeys = "admin:ops:" + adminKey + ",checkout:" + checkoutKey + ",analyst:reader:" + analystKey
	s := apptest.Start(t, o)
	return &env{t: t, handler: s.App.HTTP.Handler(), db: s.DB, url: s.URL, clock: s.Clock,
		store: s.App.Experiments, loyalty: s.App.Loyalty, sched: s.App.Results, proxy: s.Proxy}
}

// user is a browser: a cookie jar that does not follow redirects, so tests see them.
type user struct {
	e      *env
	client *http.Client
}

func (e *env) anonymous() *user {
	jar, _ := cookiejar.New(nil)
	return &user{e: e, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// signedIn is a user signed in with key.
func (e *env) signedIn(key string) *user {
	e.t.Helper()
	u := e.anonymous()
	resp := u.signIn(key)
	if resp.status != http.StatusSeeOther {
		e.t.Fatalf("sign-in with a good key: status %d\n%s", resp.status, resp.body)
	}
	return u
}

// page is an answer: its status, headers, body and parsed document.
type page struct {
	t      testing.TB
	status int
	header http.Header
	body   string
	doc    *goquery.Document
}

func (u *user) do(req *http.Request) *page {
	u.e.t.Helper()
	resp, err := u.client.Do(req)
	if err != nil {
		u.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.e.t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(b)))
	if err != nil {
		u.e.t.Fatal(err)
	}
	return &page{t: u.e.t, status: resp.StatusCode, header: resp.Header, body: string(b), doc: doc}
}

func (u *user) get(path string) *page {
	u.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u.e.url+path, nil)
	if err != nil {
		u.e.t.Fatal(err)
	}
	return u.do(req)
}

// post sends a form as it is, token or not.
func (u *user) post(path string, form url.Values) *page {
	u.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		u.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.do(req)
}

// submit sends a form with the CSRF token of the page it is on, as the browser would.
func (u *user) submit(from *page, path string, form url.Values) *page {
	u.e.t.Helper()
	token, ok := from.doc.Find(`input[name="csrf_token"]`).First().Attr("value")
	if !ok {
		u.e.t.Fatalf("the page has no CSRF token:\n%s", from.body)
	}
	form.Set("csrf_token", token)
	return u.post(path, form)
}

func (u *user) signIn(key string) *page {
	u.e.t.Helper()
	form := u.get("/console/signin")
	return u.submit(form, "/console/signin", url.Values{"api_key": {key}})
}

// text is the trimmed text of the elements a selector finds.
func (p *page) text(sel string) string {
	return strings.Join(strings.Fields(p.doc.Find(sel).Text()), " ")
}

// errorAt is the message shown beside a form field: the element that the input named name
// says describes it (aria-describedby), or, for a group of inputs, the element with that id.
func (p *page) errorAt(name string) string {
	p.t.Helper()
	id, ok := p.doc.Find(`[name="` + name + `"]`).First().Attr("aria-describedby")
	if !ok {
		id = name
	}
	return p.text(`[id="` + id + `"]`)
}

func (p *page) wantStatus(want int) *page {
	p.t.Helper()
	if p.status != want {
		p.t.Fatalf("status %d, want %d\n%s", p.status, want, p.body)
	}
	return p
}

func (p *page) wantRedirect(prefix string) string {
	p.t.Helper()
	p.wantStatus(http.StatusSeeOther)
	loc := p.header.Get("Location")
	if !strings.HasPrefix(loc, prefix) {
		p.t.Fatalf("redirect to %q, want %s…", loc, prefix)
	}
	return loc
}

func (p *page) wantText(sel, want string) {
	p.t.Helper()
	if got := p.text(sel); !strings.Contains(got, want) {
		p.t.Fatalf("%s says %q, want it to hold %q\n%s", sel, got, want, p.body)
	}
}

// count runs a count query.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.GetContext(context.Background(), &n, query, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// create stores an experiment as the API would.
func (e *env) create(def experiments.Definition) *experiments.Experiment {
	e.t.Helper()
	x, err := e.store.Create(context.Background(), experiments.Actor{Role: "admin", Name: "test"}, def)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

func (e *env) transition(key string, a experiments.Action) *experiments.Experiment {
	e.t.Helper()
	x, err := e.store.Transition(context.Background(), experiments.Actor{Role: "admin", Name: "test"}, key, a, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

// threeArms is a valid three-variant definition.
func threeArms(key string) experiments.Definition {
	pct, pts := 10.0, int64(200)
	return experiments.Definition{Key: key, Name: "Conditioner with shampoo", Variants: []experiments.Variant{
		{Key: "control", Name: "No offer", Weight: 0.34, Strategy: experiments.Strategy{Type: experiments.StrategyNone}},
		{Key: "bundle10", Name: "Bundle", Weight: 0.33, Strategy: experiments.Strategy{Type: experiments.StrategyBundle,
			Products: []string{"sku-conditioner"}, DiscountPercent: &pct, Timing: experiments.TimingCart}},
		{Key: "points200", Name: "Points", Weight: 0.33, Strategy: experiments.Strategy{Type: experiments.StrategyLoyaltyPoints,
			Products: []string{"sku-conditioner"}, BonusPoints: &pts, Timing: experiments.TimingCheckout}},
	}}
}

type goquerySelection = goquery.Selection

// rows is the text of each table row under sel, cells separated by one space.
func (p *page) rows(sel string) []string {
	var out []string
	p.doc.Find(sel).Find("tr").Each(func(_ int, tr *goquery.Selection) {
		var cells []string
		tr.Find("th, td").Each(func(_ int, c *goquery.Selection) {
			cells = append(cells, strings.Join(strings.Fields(c.Text()), " "))
		})
		out = append(out, strings.Join(cells, " "))
	})
	return out
}

// wantRow fails unless a row under sel holds want.
func (p *page) wantRow(sel, want string) {
	p.t.Helper()
	rows := p.rows(sel)
	for _, r := range rows {
		if strings.Contains(r, want) {
			return
		}
	}
	p.t.Fatalf("no row under %s holds %q; rows:\n%s", sel, want, strings.Join(rows, "\n"))
}
