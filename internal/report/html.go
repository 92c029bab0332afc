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

// metricSection is one metric's part of the report.
type metricSection struct {
	Name     string
	Primary  bool
	Currency string
	Chart    template.HTML
	Results  []analysis.Result
}

// bodyData is what the body template reads.
type bodyData struct {
	Rep        *analysis.Report
	Currency   string
	Cumulative template.HTML
	Metrics    []metricSection
}

var verdicts = map[string]string{
	"better":        "better",
	"worse":         "worse",
	"no_difference": "no difference",
	"too_few_units": "too few units",
	"not_computed":  "not computed",
}

var funcs = template.FuncMap{
	"sentence": func(r analysis.Result, d bodyData) string {
		return Sentence(r, d.Rep.Control, string(d.Rep.Correction), resultCurrency(r, d.Currency))
	},
	"value": func(r analysis.Result, cur string, x float64) string { return Value(r.Kind, resultCurrency(r, cur), x) },
	"diff":  func(r analysis.Result, cur string) string { return Diff(r.Kind, resultCurrency(r, cur), r.Diff) },
	"pct": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return Pct(*x)
	},
	"deref": func(x *float64) float64 { return *x },
	"num": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return fmt.Sprintf("%.4g", *x)
	},
	"ci": func(r analysis.Result, cur string, lift bool) string {
		if lift {
			return Interval(r.LiftCI, Pct)
		}
		return Interval(r.DiffCI, func(x float64) string { return Diff(r.Kind, resultCurrency(r, cur), x) })
	},
	"p": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return P(*x)
	},
	"share":   func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"count":   func(n int64) string { return counts.Sprint(n) },
	"verdict": func(v string) string { return verdicts[v] },
	"chance": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f%%", 100**x)
	},
}

// counts groups thousands the same way on every machine: 16,913.
var counts = message.NewPrinter(language.English)

// resultCurrency is the currency of a result's money, or "" when it is not money.
func resultCurrency(r analysis.Result, reportCurrency string) string {
	if r.Kind == analysis.Proportion {
		return ""
	}
	return reportCurrency
}

var bodyTmpl = template.Must(template.New("body").Funcs(funcs).Parse(`<div class="report">
{{if .Rep.SRM.Mismatch}}<div class="srm" role="alert"><strong>Sample ratio mismatch:</strong> the variants did not get the traffic their weights promise (p = {{p .Rep.SRM.PValue}} &lt; 0.001). Assignment or exposure logging is broken: do not trust the results below until the cause is found.</div>{{end}}
<section class="rep-traffic" aria-labelledby="rep-traffic">
<h2 id="rep-traffic">Traffic and method</h2>
<p>{{if .Rep.Phase}}Phase {{.Rep.Phase}}. {{end}}{{if .Rep.Window}}Events from first exposure to {{.Rep.Window.End.Format "2006-01-02 15:04 MST"}} (phase started {{.Rep.Window.Start.Format "2006-01-02 15:04 MST"}}){{if .Rep.Window.ConversionWindow}}, at most {{.Rep.Window.ConversionWindow}} after it{{end}}. {{end}}
Method: {{if eq .Rep.Method "sequential"}}always-valid confidence sequences{{else}}fixed-horizon tests{{end}}{{if .Rep.CUPED}} with CUPED{{end}}, alpha {{.Rep.Alpha}}, correction {{.Rep.Correction}} over every comparison in the report.</p>
<div class="table-wrap"><table>
<caption>Exposed shoppers by variant</caption>
<thead><tr><th scope="col">variant</th><th scope="col">shoppers</th><th scope="col">share</th><th scope="col">expected</th></tr></thead>
<tbody>{{range .Rep.Variants}}<tr><th scope="row">{{.Key}}{{if eq .Key $.Rep.Control}} (control){{end}}</th><td>{{count .Units}}</td><td>{{share .ObservedShare}}</td><td>{{share .ExpectedWeight}}</td></tr>{{end}}</tbody>
</table></div>
<p>Sample ratio check: {{if .Rep.SRM.PValue}}χ² = {{printf "%.2f" (deref .Rep.SRM.Chi2)}}, p = {{p .Rep.SRM.PValue}}{{if .Rep.SRM.Mismatch}} — <strong>mismatch</strong>{{else}} — ok{{end}}{{else}}not computed ({{.Rep.SRM.Reason}}){{end}}.
{{if .Rep.ExcludedMultipleVariants}}Left out: {{count .Rep.ExcludedMultipleVariants}} shoppers seen in two variants.{{end}}</p>
{{range .Rep.Warnings}}<p class="warning">Warning: {{.}}</p>{{end}}
</section>
{{range .Metrics}}<section class="metric" id="metric-{{.Name}}" aria-labelledby="h-metric-{{.Name}}">
<h2 id="h-metric-{{.Name}}">{{.Name}}{{if .Primary}} <span class="tag">primary</span>{{end}}</h2>
<div class="table-wrap"><table>
<caption>{{.Name}} by variant, against {{$.Rep.Control}}</caption>
<thead><tr><th scope="col">variant</th><th scope="col">shoppers</th><th scope="col">mean</th><th scope="col">difference</th><th scope="col">difference interval</th><th scope="col">lift</th><th scope="col">lift interval</th><th scope="col">p</th><th scope="col">p adjusted</th><th scope="col">chance to beat control</th><th scope="col">verdict</th></tr></thead>
<tbody>
{{with index .Results 0}}<tr class="control"><th scope="row">{{$.Rep.Control}} (control)</th><td>{{count .ControlUnits}}</td><td>{{value . $.Currency .ControlMean}}</td><td></td><td></td><td></td><td></td><td></td><td></td><td></td><td></td></tr>{{end}}
{{range .Results}}<tr class="verdict-{{.Verdict}}" data-variant="{{.Variant}}"><th scope="row">{{.Variant}}</th><td>{{count .TreatmentUnits}}</td><td>{{value . $.Currency .TreatmentMean}}</td><td>{{diff . $.Currency}}</td><td>{{ci . $.Currency false}}</td><td>{{pct .Lift}}</td><td>{{ci . $.Currency true}}</td><td>{{p .PValue}}</td><td>{{p .PAdjusted}}</td><td>{{chance .ChanceToWin}}</td><td class="verdict">{{verdict .Verdict}}</td></tr>
{{end}}</tbody></table></div>
{{if .Chart}}<figure>{{.Chart}}<figcaption>Lift of each variant over {{$.Rep.Control}} on {{.Name}}, with its interval; the dashed line is no change. Point at a dot for its figures.</figcaption></figure>{{end}}
<ul class="sentences">{{range .Results}}<li>{{sentence . $}}</li>{{end}}</ul>
</section>
{{end}}
{{if .Rep.Guardrails}}<section aria-labelledby="rep-guardrails"><h2 id="rep-guardrails">Guardrails</h2>
<div class="table-wrap"><table><caption>Non-inferiority: is harm beyond the margin ruled out?</caption>
<thead><tr><th scope="col">metric</th><th scope="col">variant</th><th scope="col">margin</th><th scope="col">estimate</th><th scope="col">bound</th><th scope="col">p</th><th scope="col">verdict</th></tr></thead>
<tbody>{{range .Rep.Guardrails}}<tr class="guardrail-{{.Verdict}}"><th scope="row">{{.Metric}}</th><td>{{.Variant}}</td><td>{{.Margin}}{{if .Relative}} (relative){{end}}</td><td>{{num .Estimate}}</td><td>{{num .Bound}}</td><td>{{p .PValue}}</td><td class="verdict">{{.Verdict}}{{if .Reason}}: {{.Reason}}{{end}}</td></tr>{{end}}</tbody>
</table></div></section>{{end}}
{{if .Cumulative}}<section aria-labelledby="rep-cumulative"><h2 id="rep-cumulative">Cumulative lift over days</h2>
<figure>{{.Cumulative}}<figcaption>Lift of the primary metric among the shoppers exposed up to each day; dashed lines are the interval. Point at a dot for its figures.</figcaption></figure></section>{{end}}
{{range .Rep.Segments}}<section><h2>Segment {{$.Rep.SegmentAttribute}} = {{.Value}}</h2><ul class="sentences">{{range .Results}}<li>{{sentence . $}}</li>{{end}}</ul></section>{{end}}
</div>`))

// data prepares a report for the templates: charts drawn, results grouped by metric.
func data(rep *analysis.Report) (bodyData, error) {
	d := bodyData{Rep: rep, Currency: currencyOf(rep)}
	var err error
	if d.Cumulative, err = CumulativeChart(rep.Cumulative); err != nil {
		return d, fmt.Errorf("drawing the cumulative chart: %v", err)
	}
	for i := 0; i < len(rep.Results); {
		j := i
		for j < len(rep.Results) && rep.Results[j].Metric == rep.Results[i].Metric {
			j++
		}
		m := metricSection{Name: rep.Results[i].Metric, Primary: rep.Results[i].Metric == rep.PrimaryMetric, Results: rep.Results[i:j]}
		if m.Chart, err = LiftChart(m.Name, m.Results); err != nil {
			return d, fmt.Errorf("drawing the chart of %s: %v", m.Name, err)
		}
		d.Metrics = append(d.Metrics, m)
		i = j
	}
	return d, nil
}

// currencyOf is the currency of the report's money.
func currencyOf(rep *analysis.Report) string { return "" }

// Body renders the report as an HTML fragment (sections with h2 headings, tables, inline SVG
// charts), for a page that gives it its frame and style.
func Body(rep *analysis.Report) (template.HTML, error) {
	d, err := data(rep)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := bodyTmpl.Execute(&buf, d); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil // our own template's output
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Rep.Experiment}} — experiment report</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right;font-variant-numeric:tabular-nums}
td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:600;padding:.3em 0}
.srm{background:#fdd;border:2px solid #c00;padding:1em}.tag{font-size:.7em;background:#eef;border-radius:.3em;padding:.1em .4em;vertical-align:middle}
.verdict-better .verdict{color:#075e16;font-weight:600}.verdict-worse .verdict{color:#a10000;font-weight:600}.guardrail-fail .verdict{color:#a10000;font-weight:600}
.warning{color:#6b4a00}.table-wrap{overflow-x:auto}svg{display:block;max-width:100%;height:auto;margin:.5em 0}figure{margin:0}figcaption{color:#555;font-size:.9em}li{margin:.2em 0}
</style></head><body>
<h1>{{.Rep.Experiment}}{{if .Rep.Name}} — {{.Rep.Name}}{{end}}</h1>
{{.Body}}
</body></html>
`))

// WritePage writes the report as a whole HTML page that reads offline: its style inline, its
// charts inline SVG.
func WritePage(w io.Writer, rep *analysis.Report) error {
	body, err := Body(rep)
	if err != nil {
		return err
	}
	return pageTmpl.Execute(w, struct {
		Rep  *analysis.Report
		Body template.HTML
	}{rep, body})
}
