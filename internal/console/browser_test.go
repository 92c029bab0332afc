package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jmoiron/sqlx"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/xsell/xsell/internal/browser"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/servertest"
	"github.com/xsell/xsell/internal/simulation"
)

// The browser tests drive the real server binary on a real database with Debian's headless
// Chromium, as a growth team and an analyst would use the console.

const (
	adminSecret    = "browser-admin-0123456789abcdef0123456789"
	analystSecret  = "browser-analyst-0123456789abcdef012345678"
	checkoutSecret = "browser-checkout-0123456789abcdef01234567"
)

// scenario is a small shop whose conditioner sells better with a bundle.
const scenario = `
seed: 17
shoppers: 1500
days: 3
currency: EUR
attributes: {country: {IT: 0.6, FR: 0.4}}
catalog:
  - {sku: sku-shampoo, price: 899, weight: 10, goes_with: {sku-conditioner: 0.4}}
  - {sku: sku-razor, price: 1299, weight: 3}
  - {sku: sku-conditioner, price: 1099, weight: 0}
shopper: {conversion: 0.5, order_value: {median: 2000, sigma: 0.4}, refund: 0.02, max_items: 4}
effects:
  bundle: {cross_sell: 0.5}
`

type browserEnv struct {
	t    *testing.T
	url  string
	db   *sqlx.DB
	ctx  context.Context
	stop []func()
}

func newBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	if _, err := browser.Path(); err != nil {
		t.Fatal(err) // never a skip: a missing browser must not pass for green
	}
	url := dbtest.URL(t)
	srv := servertest.Start(t, url,
		"XSELL_API_KEYS=admin:ops:"+adminSecret+",analyst:reader:"+analystSecret+",checkout:"+checkoutSecret,
		"XSELL_RATE_LIMIT=admin=0,analyst=0,checkout=0")
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return &browserEnv{t: t, url: srv.URL, db: db, ctx: ctx}
}

// tab opens a browser of its own (its own cookies) signed in with key.
func (b *browserEnv) tab(key string) context.Context {
	b.t.Helper()
	tab, stop, err := browser.Start(b.ctx, browser.Options{})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(stop)
	if err := browser.SignIn(tab, b.url, key); err != nil {
		b.t.Fatalf("signing in: %v", err)
	}
	return tab
}

func (b *browserEnv) do(tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		html, _ := chromedp.Run(tab, chromedp.OuterHTML(chromedp.CSS("main")))
		b.t.Fatalf("%v\npage:\n%s", err, html)
	}
}

func (b *browserEnv) text(tab context.Context, sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// post submits a form the page does not have (as a forged or replayed request would be made):
// it is added to the page with the given fields and submitted; the answer's status is returned.
func (b *browserEnv) post(tab context.Context, path string, fields map[string]string) int {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "post"; f.action = %q;
		for (const [k, v] of Object.entries(%s)) { const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i); }
		const s = document.createElement("button"); s.id = "forged-submit"; s.type = "submit"; s.textContent = "go"; f.appendChild(s);
		document.body.appendChild(f); return true; })()`, path, mustJSON(b.t, fields))
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](js)); err != nil {
		b.t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.ID("forged-submit")))
	if err != nil {
		b.t.Fatal(err)
	}
	return int(resp.Status)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (b *browserEnv) status(key string) string {
	b.t.Helper()
	var s string
	if err := b.db.Get(&s, `SELECT status FROM experiments WHERE key = $1`, key); err != nil {
		b.t.Fatal(err)
	}
	return s
}

func TestBrowserAGrowthTeamRunsAnExperimentAndAnAnalystReadsIt(t *testing.T) {
	b := newBrowserEnv(t)
	admin := b.tab(adminSecret)

	// Define a three-variant experiment through the form, with one mistake first.
	b.do(admin,
		chromedp.Navigate(b.url+"/console/experiments/new"),
		chromedp.WaitVisible(chromedp.ID("f-key")),
		chromedp.SendKeys(chromedp.ID("f-key"), "Shampoo Bundle"),
		chromedp.SendKeys(chromedp.ID("f-name"), "Conditioner with shampoo"),
		chromedp.SendKeys(chromedp.ID("f-variants-1-key"), "bundle15"),
		chromedp.SendKeys(chromedp.ID("f-variants-1-name"), "Bundle -15%"),
		chromedp.SendKeys(chromedp.ID("f-variants-1-strategy-products"), "sku-conditioner"),
		chromedp.SendKeys(chromedp.ID("f-variants-1-strategy-trigger_products"), "sku-shampoo"),
		chromedp.SendKeys(chromedp.ID("f-variants-1-strategy-discount_percent"), "15"),
		chromedp.SendKeys(chromedp.ID("f-variants-2-key"), "points200"),
		chromedp.SendKeys(chromedp.ID("f-variants-2-name"), "200 bonus points"),
		chromedp.SendKeys(chromedp.ID("f-variants-2-strategy-products"), "sku-conditioner"),
		chromedp.SendKeys(chromedp.ID("f-variants-2-strategy-bonus_points"), "200"),
		chromedp.Click(chromedp.CSS(`button[value="save"]`)),
		chromedp.WaitVisible(chromedp.ID("f-key-error")),
	)
	if got := b.text(admin, "#f-key-error"); !strings.Contains(got, "lowercase slug") {
		t.Fatalf("beside the key: %q", got)
	}
	if got := b.text(admin, ".error-summary"); !strings.Contains(got, "Nothing was stored") {
		t.Fatalf("summary: %q", got)
	}
	var n int
	if err := b.db.Get(&n, `SELECT count(*) FROM experiments`); err != nil || n != 0 {
		t.Fatalf("%d experiments stored by a refused form (%v)", n, err)
	}
	b.do(admin,
		chromedp.Clear(chromedp.ID("f-key")),
		chromedp.SendKeys(chromedp.ID("f-key"), "shampoo-bundle"),
		chromedp.Click(chromedp.CSS(`button[value="save"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if got := b.text(admin, ".notice"); !strings.Contains(got, "created as a draft") {
		t.Fatalf("after saving: %q", got)
	}

	// Start it, through the confirmation.
	b.do(admin,
		chromedp.Click(chromedp.CSS(`a[href$="/confirm/start"]`)),
		chromedp.WaitVisible(chromedp.CSS(".explain")),
	)
	if got := b.text(admin, ".explain"); !strings.Contains(got, "first exposure is recorded") {
		t.Fatalf("the confirmation says %q", got)
	}
	b.do(admin, chromedp.Click(chromedp.CSS(`form button[type=submit].primary`)), chromedp.WaitVisible(chromedp.CSS(".status-running")))
	if s := b.status("shampoo-bundle"); s != "running" {
		t.Fatalf("status %s after Start", s)
	}

	// Traffic, through the public API.
	sc, err := simulation.ParseScenario([]byte(scenario))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := simulation.Run(b.ctx, sc, simulation.Config{BaseURL: b.url, AdminKey: adminSecret, CheckoutKey: checkoutSecret,
		Experiment: "shampoo-bundle", WaitLoyalty: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Refresh the results and read the primary metric's row.
	b.do(admin,
		chromedp.Navigate(b.url+"/console/experiments/shampoo-bundle/results"),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/results/refresh"] button`)),
		chromedp.Click(chromedp.CSS(`form[action$="/results/refresh"] button`)),
		// The page reloads itself until the snapshot asked for is there.
		chromedp.WaitVisible(chromedp.CSS(`#metric-cross_sell_rate tr[data-variant="bundle15"]`)),
	)
	row := b.text(admin, `#metric-cross_sell_rate tr[data-variant="bundle15"]`)
	var exposed int
	if err := b.db.Get(&exposed, `SELECT count(*) FROM exposures WHERE experiment_key = 'shampoo-bundle' AND variant = 'bundle15' AND NOT multiple_variants`); err != nil {
		t.Fatal(err)
	}
	if exposed == 0 || !strings.HasPrefix(row, message.NewPrinter(language.English).Sprintf("bundle15 %d ", exposed)) {
		t.Errorf("the primary metric's row %q does not count the %d shoppers exposed to bundle15 (the simulation sent %d)", row, exposed, sum.Shoppers)
	}
	if !strings.Contains(row, "%") || !strings.Contains(row, "[") {
		t.Errorf("the row %q has no lift with its interval", row)
	}

	// An analyst sees no write control, and a forged write is refused.
	analyst := b.tab(analystSecret)
	for _, path := range []string{"/console/experiments", "/console/experiments/shampoo-bundle", "/console/loyalty"} {
		b.do(analyst, chromedp.Navigate(b.url+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		count, err := chromedp.Run(analyst, chromedp.Evaluate[int](`document.querySelectorAll("[data-write]").length`))
		if err != nil || count != 0 {
			t.Errorf("%s shows an analyst %d write controls (%v)", path, count, err)
		}
	}
	token, err := chromedp.Run(analyst, chromedp.Evaluate[string](`document.querySelector('input[name="csrf_token"]').value`))
	if err != nil || token == "" {
		t.Fatalf("no token on the analyst's page: %v", err)
	}
	if st := b.post(analyst, "/console/experiments/shampoo-bundle/action/stop", map[string]string{"csrf_token": token, "version": "2"}); st != 403 {
		t.Errorf("the analyst's forged stop answered %d, want 403", st)
	}
	if s := b.status("shampoo-bundle"); s != "running" {
		t.Errorf("status %s after the analyst's forged stop", s)
	}

	// A POST without the CSRF token is refused, even from the admin's own session.
	if st := b.post(admin, "/console/experiments/shampoo-bundle/action/pause", map[string]string{"version": "2"}); st != 403 {
		t.Errorf("a pause without its token answered %d, want 403", st)
	}
	if s := b.status("shampoo-bundle"); s != "running" {
		t.Errorf("status %s after a POST without its token", s)
	}

	// Sign-out ends the session: the console asks to sign in again.
	b.do(admin,
		chromedp.Navigate(b.url+"/console/experiments"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/console/signout"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)),
		chromedp.WaitVisible(chromedp.ID("api_key")),
		chromedp.Navigate(b.url+"/console/experiments/shampoo-bundle"),
		chromedp.WaitVisible(chromedp.ID("api_key")),
	)
	loc, err := chromedp.Run(admin, chromedp.Location())
	if err != nil || !strings.Contains(loc, "/console/signin") {
		t.Errorf("after sign-out the console is at %q (%v)", loc, err)
	}
	var sessions int
	if err := b.db.Get(&sessions, `SELECT count(*) FROM console_sessions WHERE role = 'admin'`); err != nil || sessions != 0 {
		t.Errorf("%d admin sessions left after sign-out (%v)", sessions, err)
	}
}
