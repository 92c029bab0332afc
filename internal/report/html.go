package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/xsell/xsell/internal/analysis"
)

// htmlMetric is one metric's section of the page.
type htmlMetric struct {
	Name    string
	Primary bool
	Chart   template.HTML
	Results []analysis.Result
}

// htmlData is what the templates read.
type htmlData struct {
	Rep        *analysis.Report
	Cumulative template.HTML
	Metrics    []htmlMetric
	Body       template.HTML
}

// counts groups thousands the same way on every machine: 16,913.
var counts = message.NewPrinter(language.English)

var verdicts = map[string]string{
	analysis.VerdictBetter:       "better",
	analysis.VerdictWorse:        "worse",
	analysis.VerdictNoDifference: "no difference",
	analysis.VerdictTooFewUnits:  "too few units",
	analysis.VerdictNotComputed:  "not computed",
}

var funcs = template.FuncMap{
	"sentence": func(r analysis.Result, rep *analysis.Report) string {
		return Sentence(r, rep.Control, string(rep.Correction), true)
	},
	"value": func(r analysis.Result, x float64) string { return AmountsOf(r, true).Value(x) },
	"diff":  func(r analysis.Result) string { return AmountsOf(r, true).Diff(r.Diff) },
	"pct":   pctOr,
	"deref": func(x *float64) float64 { return *x },
	"ci": func(r analysis.Result, lift bool) string {
		if lift {
			return Interval(r.LiftCI, Pct)
		}
		return Interval(r.DiffCI, AmountsOf(r, true).Diff)
	},
	"p": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return P(*x)
	},
	"guard": func(g analysis.GuardrailResult, rep *analysis.Report, x *float64) string {
		if x == nil {
			return "—"
		}
		if g.TestedOn == "lift" {
			return Pct(*x)
		}
		return Amounts{Kind: KindOf(rep, g.Metric), Currency: g.Currency, Symbol: true}.Diff(*x)
	},
	"margin": func(g analysis.GuardrailResult, rep *analysis.Report) string {
		switch {
		case g.Relative:
			return Sig(100*g.Margin) + "% relative"
		case KindOf(rep, g.Metric) == analysis.Proportion:
			return Sig(100*g.Margin) + "pp"
		}
		return Amounts{Kind: analysis.Mean, Currency: g.Currency, Symbol: true}.Value(g.Margin)
	},
	"total": func(rep *analysis.Report, t analysis.HoldoutTotal, ci bool) string {
		f := HoldoutTotalFormat(rep, t)
		if ci {
			return Interval(t.TotalCI, f)
		}
		return f(t.Total)
	},
	"share":     func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"count":     func(n int64) string { return counts.Sprint(n) },
	"chance":    func(x *float64) string { return chanceOr(x) },
	"verdict":   func(v string) string { return verdicts[v] },
	"level":     Level,
	"intervals": IntervalsNote,
	"caps":      func(rep *analysis.Report) string { return CapsNote(rep, true) },
}

// bodyTmpl is the report itself, for a page that gives it its frame and style: sections with
// h2 headings, tables with captions and header cells, the charts inline; the sample ratio
// mismatch first and loud.
var bodyTmpl = template.Must(template.New("body").Funcs(funcs).Parse(`<div class="report">
{{if .Rep.SRM.Mismatch}}<div class="srm" role="alert"><strong>SAMPLE RATIO MISMATCH:</strong> the variants did not get the traffic their weights promise (p = {{p .Rep.SRM.PValue}} &lt; 0.001). Assignment or exposure logging is broken; do not trust the results below until the cause is found.</div>{{end}}
{{with .Rep.Holdout}}<section aria-labelledby="rep-holdout">
<h2 id="rep-holdout">What the figures mean</h2>
<p>{{.Meaning}}</p>
<p class="muted">Cross-sell: an order holding a target product of any experiment of the window{{if .TargetProducts}} ({{range $i, $s := .TargetProducts}}{{if $i}}, {{end}}{{$s}}{{end}}){{else}} (none named){{end}}.</p>
<div class="table-wrap"><table>
<caption>The programme in all: the difference per shopper times the shoppers who had it</caption>
<thead><tr><th scope="col">metric</th><th scope="col">shoppers</th><th scope="col">total</th><th scope="col">{{level $.Rep.Alpha}} CI</th></tr></thead>
<tbody>{{range .Totals}}<tr><th scope="row">{{.Metric}}</th><td>{{count .Shoppers}}</td><td>{{total $.Rep . false}}</td><td>{{total $.Rep . true}}</td></tr>{{end}}</tbody>
</table></div></section>{{end}}
<section aria-labelledby="rep-traffic">
<h2 id="rep-traffic">Traffic and method</h2>
<p>{{if .Rep.Holdout}}Generation {{.Rep.Phase}} of the holdout. {{else if .Rep.Phase}}Phase {{.Rep.Phase}}. {{end}}{{if .Rep.Window}}Events from first exposure to {{.Rep.Window.End.Format "2006-01-02 15:04 MST"}}{{if .Rep.Window.ConversionWindow}}, at most {{.Rep.Window.ConversionWindow}} after it{{end}}. {{end}}
Method: {{.Rep.Method}}{{if .Rep.CUPED}} with CUPED{{end}}, alpha {{.Rep.Alpha}}, correction {{.Rep.Correction}} over {{.Rep.Comparisons}} comparisons.</p>
<ul class="muted"><li>Intervals: {{intervals .Rep}}.</li>
<li>Lift: treatment mean / control mean − 1, relative to control; left out where the control mean is not clearly above 0.</li>
<li>{{caps .Rep}}.</li>{{if .Rep.MinUnits}}<li>Verdicts need at least {{.Rep.MinUnits}} units in each arm.</li>{{end}}
{{if .Rep.Currency}}<li>Money in {{.Rep.Currency}}.</li>{{end}}</ul>
<div class="table-wrap"><table>
<caption>Exposed units by variant</caption>
<thead><tr><th scope="col">variant</th><th scope="col">units</th><th scope="col">share</th><th scope="col">expected</th></tr></thead>
<tbody>{{range .Rep.Variants}}<tr><th scope="row">{{.Key}}{{if eq .Key $.Rep.Control}} (control){{end}}</th><td>{{count .Units}}</td><td>{{share .ObservedShare}}</td><td>{{share .ExpectedWeight}}</td></tr>{{end}}</tbody>
</table></div>
<p>SRM check: {{if .Rep.SRM.PValue}}χ² = {{printf "%.2f" (deref .Rep.SRM.Chi2)}}, p = {{p .Rep.SRM.PValue}}{{if .Rep.SRM.Mismatch}} — <strong>MISMATCH</strong>{{else}} — ok{{end}}{{else}}not computed ({{.Rep.SRM.Reason}}){{end}}.
{{if .Rep.ExcludedMultipleVariants}}Left out: {{.Rep.ExcludedMultipleVariants}} units seen in two variants.{{end}}</p>
{{with .Rep.Bandit}}<h3>Bandit{{if .Metric}} on {{.Metric}}{{end}}: weights by period</h3>
<p class="muted">Each comparison is made within the periods of constant weights and combined ({{.Estimator}}); SRM is checked against each period's weights.</p>
<div class="table-wrap"><table>
<caption>Weight in force (shoppers first exposed in the period)</caption>
<thead><tr><th scope="col">period</th><th scope="col">from</th>{{range $.Rep.Variants}}<th scope="col">{{.Key}}</th>{{end}}<th scope="col">SRM p</th></tr></thead>
<tbody>{{range $p := .Periods}}<tr><th scope="row">{{$p.Period}}</th><td>{{$p.Start.Format "2006-01-02 15:04:05"}}</td>{{range $.Rep.Variants}}<td>{{share (index $p.Weights .Key)}} ({{count (index $p.Units .Key)}})</td>{{end}}<td>{{p $p.SRM.PValue}}</td></tr>{{end}}</tbody>
</table></div>{{end}}
{{range .Rep.Warnings}}<p class="warning">Warning: {{.}}</p>{{end}}
</section>
{{if .Cumulative}}<section aria-labelledby="rep-cumulative"><h2 id="rep-cumulative">Cumulative effect over days</h2>
<figure>{{.Cumulative}}<figcaption>The primary metric among the units first exposed up to each day. Point at a dot for its figures.</figcaption></figure></section>{{end}}
{{range .Metrics}}<section class="metric" id="metric-{{.Name}}" aria-labelledby="h-metric-{{.Name}}">
<h2 id="h-metric-{{.Name}}">{{.Name}}{{if .Primary}} <span class="tag">primary</span>{{end}}</h2>
<div class="table-wrap"><table>
<caption>{{.Name}} by variant, against {{$.Rep.Control}}</caption>
<thead><tr><th scope="col">variant</th><th scope="col">units</th><th scope="col">mean</th><th scope="col">diff</th><th scope="col">diff {{level $.Rep.Alpha}} CI</th><th scope="col">lift</th><th scope="col">lift {{level $.Rep.Alpha}} CI</th><th scope="col">p</th><th scope="col">p adj</th><th scope="col">chance to beat control</th><th scope="col">verdict</th></tr></thead>
<tbody>
{{with index .Results 0}}<tr class="control"><th scope="row">{{$.Rep.Control}} (control)</th><td>{{count .ControlUnits}}</td><td>{{value . .ControlMean}}</td><td></td><td></td><td></td><td></td><td></td><td></td><td></td><td></td></tr>{{end}}
{{range .Results}}<tr class="verdict-{{.Verdict}}{{if .Significant}} sig{{end}}" data-variant="{{.Variant}}"><th scope="row">{{.Variant}}</th><td>{{count .TreatmentUnits}}</td><td>{{value . .TreatmentMean}}</td><td>{{diff .}}</td><td>{{ci . false}}</td><td>{{pct .Lift}}</td><td>{{ci . true}}</td><td>{{p .PValue}}</td><td>{{p .PAdjusted}}</td><td>{{chance .ChanceToWin}}</td><td class="verdict">{{verdict .Verdict}}</td></tr>
{{end}}</tbody></table></div>
{{if .Chart}}<figure>{{.Chart}}<figcaption>Each variant against {{$.Rep.Control}} on {{.Name}}, with its interval; the dashed line is no change. Point at a dot for its figures.</figcaption></figure>{{else}}<p class="muted">No effect could be computed for this metric.</p>{{end}}
<ul class="sentences">{{range .Results}}<li>{{sentence . $.Rep}}{{if and .LiftReason .PValue}} <span class="muted">(no lift: {{.LiftReason}})</span>{{end}}</li>{{end}}</ul>
</section>
{{end}}
{{if .Rep.Guardrails}}<section aria-labelledby="rep-guardrails"><h2 id="rep-guardrails">Guardrails</h2>
<div class="table-wrap"><table><caption>Non-inferiority: is harm beyond the margin ruled out?</caption>
<thead><tr><th scope="col">metric</th><th scope="col">variant</th><th scope="col">margin</th><th scope="col">estimate</th><th scope="col">bound</th><th scope="col">p</th><th scope="col">verdict</th></tr></thead>
<tbody>{{range .Rep.Guardrails}}<tr class="guardrail-{{.Verdict}}"><th scope="row">{{.Metric}}</th><td>{{.Variant}}</td><td>{{margin . $.Rep}}</td><td>{{guard . $.Rep .Estimate}}</td><td>{{guard . $.Rep .Bound}}</td><td>{{p .PValue}}</td><td class="verdict">{{.Verdict}}{{if .Reason}}: {{.Reason}}{{end}}{{if .Note}} ({{.Note}}){{end}}</td></tr>{{end}}</tbody>
</table></div></section>{{end}}
{{range .Rep.Segments}}<section><h2>Segment {{$.Rep.SegmentAttribute}} = {{.Value}}</h2><ul class="sentences">{{range .Results}}<li>{{sentence . $.Rep}}</li>{{end}}</ul></section>{{end}}
</div>`))

// pageTmpl is the report as a page of its own that reads offline: its style inline.
var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Rep.Holdout}}Programme holdout — report{{else}}{{.Rep.Experiment}} — experiment report{{end}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:bold}.srm{background:#fdd;border:2px solid #c00;padding:1em;font-weight:bold}
.sig{font-weight:bold}.muted,.warning{color:#666}.tag{font-size:.7em;background:#eef;padding:.1em .4em}.table-wrap{overflow-x:auto}
svg{display:block;max-width:100%;height:auto;margin:.5em 0}figure{margin:0}figcaption{color:#666}li{margin:.2em 0}
</style></head><body>
<h1>{{with .Rep.Holdout}}Programme holdout, generation {{.Generation}}{{else}}{{.Rep.Experiment}}{{if .Rep.Name}} — {{.Rep.Name}}{{end}}{{end}}</h1>
{{.Body}}
</body></html>
`))

// pctOr writes an optional fraction as a percentage, a dash when absent.
func pctOr(x *float64) string {
	if x == nil {
		return "—"
	}
	return Pct(*x)
}

// chanceOr writes an optional probability as a whole percentage, a dash when absent.
func chanceOr(x *float64) string {
	if x == nil {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100**x)
}

// prepare draws the charts and groups the results by metric.
func prepare(rep *analysis.Report) (htmlData, error) {
	data := htmlData{Rep: rep}
	var err error
	if rep.Cumulative != nil {
		if data.Cumulative, err = CumulativeChart(rep.Cumulative, KindOf(rep, rep.Cumulative.Metric)); err != nil {
			return data, fmt.Errorf("drawing the cumulative chart: %v", err)
		}
	}
	for i := 0; i < len(rep.Results); {
		j := i
		for j < len(rep.Results) && rep.Results[j].Metric == rep.Results[i].Metric {
			j++
		}
		m := htmlMetric{Name: rep.Results[i].Metric, Primary: rep.Results[i].Metric == rep.PrimaryMetric, Results: rep.Results[i:j]}
		if m.Chart, err = EffectChart(m.Name, m.Results); err != nil {
			return data, fmt.Errorf("drawing the chart of %s: %v", m.Name, err)
		}
		data.Metrics = append(data.Metrics, m)
		i = j
	}
	return data, nil
}

// Body renders the report as an HTML fragment, for a page that gives it its frame and style
// (the console's results page).
func Body(rep *analysis.Report) (template.HTML, error) {
	data, err := prepare(rep)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := bodyTmpl.Execute(&buf, data); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil // our own template's output, its values escaped
}

// WritePage writes the report as a whole HTML page that reads offline (`analyze report
// --format html`): style inline, charts inline SVG, nothing fetched.
func WritePage(w io.Writer, rep *analysis.Report) error {
	body, err := Body(rep)
	if err != nil {
		return err
	}
	return pageTmpl.Execute(w, htmlData{Rep: rep, Body: body})
}
