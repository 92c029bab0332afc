package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/xsell/xsell/internal/money"
)

// pages are the parsed templates, one set per page: the layout and partials with the page's
// own file, which defines "content".
type pages map[string]*template.Template

// view is what every page template gets: the page's data and the frame around it.
type view struct {
	Title string
	Sess  *session
	// Nav is the section of the navigation the page belongs to.
	Nav string
	// Notice is a sentence to show at the top: what the last action did.
	Notice string
	// Refresh, when positive, reloads the page after that many seconds (a computation the
	// page waits for); it works without JavaScript.
	Refresh int
	Data    any
}

// CSRF is the session's token for the page's forms.
func (v view) CSRF() string {
	if v.Sess == nil {
		return ""
	}
	return v.Sess.CSRF
}

// Admin reports whether the page may show controls that change things.
func (v view) Admin() bool { return v.Sess.Admin() }

func parsePages() (pages, error) {
	shared := []string{"templates/layout.html", "templates/partials.html"}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, shared...)
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	names, err := fs.Glob(assets, "templates/page_*.html")
	if err != nil {
		return nil, err
	}
	out := pages{}
	for _, n := range names {
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(path.Base(n), "page_"), ".html")] = t
	}
	return out, nil
}

// render writes a page. It renders into a buffer first, so that a template error becomes an
// error page rather than half a page.
func (c *Console) render(q *request, status int, page, title string, data any) {
	c.renderView(q, status, page, view{Title: title, Sess: q.sess, Data: data})
}

func (c *Console) renderView(q *request, status int, page string, v view) {
	if v.Sess == nil {
		v.Sess = q.sess
	}
	if v.Nav == "" {
		v.Nav = page
	}
	if v.Notice == "" {
		v.Notice = notices[q.r.URL.Query().Get("done")]
	}
	t, ok := c.pages[page]
	var buf bytes.Buffer
	var err error
	if !ok {
		err = fmt.Errorf("no template for page %q", page)
	} else {
		err = t.ExecuteTemplate(&buf, "layout.html", v)
	}
	if err != nil {
		c.log.Error("console: rendering a page", "page", page, "error", err)
		http.Error(q.w, "the page could not be rendered; the server log says why", http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(buf.Bytes())
}

// notices are the sentences a redirect after an action may ask a page to show (?done=...):
// a fixed list, so that a link cannot make the console say anything else.
var notices = map[string]string{
	"created":   "The experiment was created as a draft.",
	"saved":     "Your changes were saved.",
	"start":     "The experiment is running: /v1/assign now puts shoppers in its variants.",
	"pause":     "The experiment is paused: shoppers get the control's experience until you resume it.",
	"resume":    "The experiment is running again.",
	"stop":      "The experiment is stopped for good. Its results stay readable.",
	"phase":     "A new phase started: shoppers are re-randomised and the analysis starts a fresh window.",
	"deleted":   "The draft was deleted.",
	"refresh":   "Fresh results were asked for; this page updates itself when they are ready.",
	"program":   "The loyalty program's settings were saved.",
	"reversed":  "The transaction was reversed.",
	"signedout": "You are signed out.",
	"ideas":     "Fresh bundle ideas were asked for; this page updates itself when they are ready.",
}

var funcs = template.FuncMap{
	"when":     when,
	"ago":      ago,
	"pct":      pct,
	"pctOf":    func(x float64) string { return pct(&x) },
	"signed":   signedPct,
	"interval": interval,
	"weight":   func(w float64) string { return trimFloat(100*w) + "%" },
	"num":      trimFloat,
	"money":    moneyOf,
	"json":     prettyJSON,
	"join":     strings.Join,
	"days":     days,
	"int64":    func(n int64) string { return groupDigits(n) },
	"fieldID":  fieldID,
	"deref":    func(x *float64) float64 { return *x },
	"add":      func(a, b int) int { return a + b },
	"float":    func(p *int64) float64 { return float64(*p) },
	"timeOf":   func(p *time.Time) time.Time { return *p },
	"daysOf":   func(d time.Duration) int { return int(d / (24 * time.Hour)) },
	"every":    every,
	"dur":      func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() },
	"seq": func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		return s
	},
}

// when shows a time in UTC to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago says how long before now a time was, roughly.
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// every says a period in words: "hour", "30 minutes", "2 hours".
func every(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// days is the whole days from start to end (or now when end is nil).
func days(start, end *time.Time) string {
	if start == nil {
		return "—"
	}
	e := time.Now()
	if end != nil {
		e = *end
	}
	return fmt.Sprint(int(e.Sub(*start) / (24 * time.Hour)))
}

// pct shows a fraction as a percentage with one decimal; a dash when absent.
func pct(x *float64) string {
	if x == nil || math.IsNaN(*x) || math.IsInf(*x, 0) {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100**x)
}

// signedPct shows a fraction as a signed percentage, such as +23.0% or −1.2%.
func signedPct(x *float64) string {
	if x == nil || math.IsNaN(*x) || math.IsInf(*x, 0) {
		return "—"
	}
	s := fmt.Sprintf("%+.1f%%", 100**x)
	return strings.Replace(s, "-", "−", 1)
}

// interval shows an interval of fractions as signed percentages.
func interval(ci *[2]float64) string {
	if ci == nil {
		return "—"
	}
	return "[" + signedPct(&ci[0]) + ", " + signedPct(&ci[1]) + "]"
}

// trimFloat shows a number without trailing zeros.
func trimFloat(x float64) string {
	s := fmt.Sprintf("%.4f", x)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// moneyOf shows an amount of minor units in the currency with its symbol: €29.04.
func moneyOf(currency string, minor float64) string {
	if currency == "" {
		return trimFloat(minor) + " (minor units, currency unknown)"
	}
	return money.Lookup(currency).Symbol(minor)
}

// groupDigits writes a whole number with thousands separators and a true minus: −1,234.
func groupDigits(n int64) string {
	if n < 0 {
		return "−" + digits.Sprint(-n)
	}
	return digits.Sprint(n)
}

// digits groups thousands the same way on every machine.
var digits = message.NewPrinter(language.English)

// prettyJSON indents raw JSON for a <pre>.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// fieldID turns a field path (variants[1].strategy.type) into an HTML id.
func fieldID(p string) string {
	r := strings.NewReplacer("[", "-", "]", "", ".", "-", "$", "", " ", "-")
	return "f-" + r.Replace(p)
}
