package main

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/money"
)

// svgOf renders a plot as an SVG element to inline into the page (no XML prolog, no external
// reference, so the page reads with no network).
func svgOf(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return template.HTML(s), nil // our own plot's markup, not user input
}

// effectErrors feeds effects and their interval to an error-bar plotter.
type effectErrors struct {
	plotter.XYs
	plotter.YErrors
}

// effectScale is what a chart draws: the lift in percent where every result has one, else the
// difference (percentage points for a proportion, major units for money).
type effectScale struct {
	label string
	value func(x float64) float64
}

func liftScale() effectScale {
	return effectScale{"lift vs control (%)", func(x float64) float64 { return 100 * x }}
}

func diffScale(kind analysis.Kind, currency string) effectScale {
	switch {
	case kind == analysis.Proportion:
		return effectScale{"difference (percentage points)", func(x float64) float64 { return 100 * x }}
	case currency != "":
		per := float64(money.Lookup(currency).MinorPerMajor())
		return effectScale{"difference (" + currency + ")", func(x float64) float64 { return x / per }}
	}
	return effectScale{"difference", func(x float64) float64 { return x }}
}

// effectChart draws each treatment's effect on one metric with its interval.
func effectChart(metric string, rs []analysis.Result) (template.HTML, error) {
	useLift := true
	for _, r := range rs {
		if r.PValue != nil && r.Lift == nil {
			useLift = false
		}
	}
	scale := liftScale()
	if !useLift {
		scale = diffScale(rs[0].Kind, rs[0].Currency)
	}
	var pts effectErrors
	var names []string
	for _, r := range rs {
		est, ci := r.Diff, r.DiffCI
		if useLift {
			if r.Lift == nil {
				continue
			}
			est, ci = *r.Lift, r.LiftCI
		}
		if ci == nil {
			continue
		}
		x := float64(len(names))
		names = append(names, r.Variant)
		e := scale.value(est)
		pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: e})
		pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{e - scale.value(ci[0]), scale.value(ci[1]) - e})
	}
	if len(names) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = metric + ": effect vs control, with its interval"
	p.Y.Label.Text = scale.label
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	zero, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 0}, {X: float64(len(names)) - 0.5, Y: 0}})
	if err != nil {
		return "", err
	}
	zero.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	zero.Color = plotutil.Color(6)
	bars, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return "", err
	}
	bars.CapWidth = vg.Points(10)
	bars.LineStyle.Width = vg.Points(1.5)
	dots, err := plotter.NewScatter(pts.XYs)
	if err != nil {
		return "", err
	}
	dots.GlyphStyle.Shape = draw.CircleGlyph{}
	dots.GlyphStyle.Radius = vg.Points(3.5)
	p.Add(zero, bars, dots)
	// Wide enough for the title, whatever the number of treatments.
	return svgOf(p, vg.Points(max(360, 140+90*float64(len(names)))), vg.Points(260))
}

// cumulativeChart draws the primary metric by day of first exposure, one line per treatment
// with its always-valid confidence sequence dashed: the lift where every point has one, else
// the difference. A sequence may be looked at every day, which a daily fixed interval may not.
func cumulativeChart(c *analysis.Cumulative, kind analysis.Kind) (template.HTML, error) {
	if c == nil || len(c.Points) == 0 {
		return "", nil
	}
	useLift := true
	for _, pt := range c.Points {
		if pt.Lift == nil {
			useLift = false
		}
	}
	scale := liftScale()
	if !useLift {
		scale = diffScale(kind, c.Currency)
	}
	byVariant := map[string][3]plotter.XYs{}
	var order []string
	for _, pt := range c.Points {
		d, err := time.Parse(time.DateOnly, pt.Day)
		if err != nil {
			return "", err
		}
		x := float64(d.Unix())
		s, ok := byVariant[pt.Variant]
		if !ok {
			order = append(order, pt.Variant)
		}
		est, cs := pt.Diff, pt.DiffCS
		if useLift {
			est, cs = *pt.Lift, *pt.LiftCS
		}
		s[0] = append(s[0], plotter.XY{X: x, Y: scale.value(est)})
		s[1] = append(s[1], plotter.XY{X: x, Y: scale.value(cs[0])})
		s[2] = append(s[2], plotter.XY{X: x, Y: scale.value(cs[1])})
		byVariant[pt.Variant] = s
	}
	p := plot.New()
	p.Title.Text = c.Metric + ": cumulative effect by day of first exposure (dashed: confidence sequence)"
	p.Y.Label.Text = scale.label
	p.X.Tick.Marker = plot.TimeTicks{Format: "2006-01-02"}
	p.Legend.Top = true
	p.Legend.Left = true // the lines end, and usually settle, on the right
	for i, v := range order {
		s := byVariant[v]
		for k, xys := range s {
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return "", err
			}
			l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
			pts.Radius = vg.Points(2)
			if k > 0 {
				l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
				pts.Radius = 0
			}
			p.Add(l, pts)
			if k == 0 {
				p.Legend.Add(v, l, pts)
			}
		}
	}
	p.Add(plotter.NewGrid())
	return svgOf(p, vg.Points(640), vg.Points(300))
}

// htmlMetric is one metric's section of the page.
type htmlMetric struct {
	Name    string
	Chart   template.HTML
	Results []analysis.Result
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"sentence": func(r analysis.Result, rep *analysis.Report) string {
		return sentence(r, rep.Control, string(rep.Correction), true)
	},
	"value": func(r analysis.Result, x float64) string { return amountsOf(r, true).value(x) },
	"diff":  func(r analysis.Result) string { return amountsOf(r, true).diff(r.Diff) },
	"pct":   pctOr,
	"deref": func(x *float64) float64 { return *x },
	"ci": func(r analysis.Result, lift bool) string {
		if lift {
			return interval(r.LiftCI, fmtPct)
		}
		return interval(r.DiffCI, amountsOf(r, true).diff)
	},
	"p": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return fmtP(*x)
	},
	"guard": func(g analysis.GuardrailResult, rep *analysis.Report, x *float64) string {
		if x == nil {
			return "—"
		}
		if g.TestedOn == "lift" {
			return fmtPct(*x)
		}
		return amounts{kind: kindOf(rep, g.Metric), currency: g.Currency, symbol: true}.diff(*x)
	},
	"margin": func(g analysis.GuardrailResult, rep *analysis.Report) string {
		switch {
		case g.Relative:
			return sig(100*g.Margin) + "% relative"
		case kindOf(rep, g.Metric) == analysis.Proportion:
			return sig(100*g.Margin) + "pp"
		}
		return amounts{kind: analysis.Mean, currency: g.Currency, symbol: true}.value(g.Margin)
	},
	"share":     func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"level":     level,
	"intervals": intervalsNote,
	"caps":      func(rep *analysis.Report) string { return capsNote(rep, true) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Rep.Experiment}} — experiment report</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.srm{background:#fdd;border:2px solid #c00;padding:1em;font-weight:bold}
.sig{font-weight:bold}.muted{color:#777}svg{display:block;margin:.5em 0}li{margin:.2em 0}
</style></head><body>
{{if .Rep.SRM.Mismatch}}<div class="srm">SAMPLE RATIO MISMATCH: the variants did not get the traffic their weights promise (p = {{p .Rep.SRM.PValue}} &lt; 0.001). Assignment or exposure logging is broken; do not trust the results below until the cause is found.</div>{{end}}
<h1>{{.Rep.Experiment}}{{if .Rep.Name}} — {{.Rep.Name}}{{end}}</h1>
<p>{{if .Rep.Phase}}Phase {{.Rep.Phase}}. {{end}}{{if .Rep.Window}}Events from first exposure to {{.Rep.Window.End.Format "2006-01-02 15:04 MST"}}{{if .Rep.Window.ConversionWindow}}, at most {{.Rep.Window.ConversionWindow}} after it{{end}}. {{end}}
Method: {{.Rep.Method}}{{if .Rep.CUPED}} with CUPED{{end}}, alpha {{.Rep.Alpha}}, correction {{.Rep.Correction}} over {{.Rep.Comparisons}} comparisons.</p>
<ul class="muted"><li>Intervals: {{intervals .Rep}}.</li>
<li>Lift: treatment mean / control mean − 1, relative to control; left out where the control mean is not clearly above 0.</li>
<li>{{caps .Rep}}.</li>{{if .Rep.MinUnits}}<li>Verdicts need at least {{.Rep.MinUnits}} units in each arm.</li>{{end}}
{{if .Rep.Currency}}<li>Money in {{.Rep.Currency}}.</li>{{end}}</ul>
<table><tr><th>variant</th><th>units</th><th>share</th><th>expected</th></tr>
{{range .Rep.Variants}}<tr><td>{{.Key}}</td><td>{{.Units}}</td><td>{{share .ObservedShare}}</td><td>{{share .ExpectedWeight}}</td></tr>{{end}}</table>
<p>SRM check: {{if .Rep.SRM.PValue}}chi2 = {{printf "%.2f" (deref .Rep.SRM.Chi2)}}, p = {{p .Rep.SRM.PValue}}{{if .Rep.SRM.Mismatch}} — MISMATCH{{else}} — ok{{end}}{{else}}not computed ({{.Rep.SRM.Reason}}){{end}}.
{{if .Rep.ExcludedMultipleVariants}}Left out: {{.Rep.ExcludedMultipleVariants}} units seen in two variants.{{end}}</p>
{{range .Rep.Warnings}}<p class="muted">Warning: {{.}}</p>{{end}}
{{if .Cumulative}}<h2>Cumulative effect over days</h2>{{.Cumulative}}{{end}}
{{range .Metrics}}<h2>{{.Name}}</h2>
{{if .Chart}}{{.Chart}}{{else}}<p class="muted">No effect could be computed for this metric.</p>{{end}}
<table><tr><th>variant</th><th>units</th><th>mean</th><th>diff</th><th>diff {{level $.Rep.Alpha}} CI</th><th>lift</th><th>lift {{level $.Rep.Alpha}} CI</th><th>p</th><th>p adj</th></tr>
{{with index .Results 0}}<tr><td>{{$.Rep.Control}} (control)</td><td>{{.ControlUnits}}</td><td>{{value . .ControlMean}}</td><td></td><td></td><td></td><td></td><td></td><td></td></tr>{{end}}
{{range .Results}}<tr{{if .Significant}} class="sig"{{end}}><td>{{.Variant}}</td><td>{{.TreatmentUnits}}</td><td>{{value . .TreatmentMean}}</td><td>{{diff .}}</td><td>{{ci . false}}</td><td>{{pct .Lift}}</td><td>{{ci . true}}</td><td>{{p .PValue}}</td><td>{{p .PAdjusted}}</td></tr>{{end}}
</table><ul>{{range .Results}}<li>{{sentence . $.Rep}}{{if and .LiftReason .PValue}} <span class="muted">(no lift: {{.LiftReason}})</span>{{end}}</li>{{end}}</ul>
{{end}}
{{if .Rep.Guardrails}}<h2>Guardrails</h2><table><tr><th>metric</th><th>variant</th><th>margin</th><th>estimate</th><th>bound</th><th>p</th><th>verdict</th></tr>
{{range .Rep.Guardrails}}<tr><td>{{.Metric}}</td><td>{{.Variant}}</td><td>{{margin . $.Rep}}</td><td>{{guard . $.Rep .Estimate}}</td><td>{{guard . $.Rep .Bound}}</td><td>{{p .PValue}}</td><td>{{.Verdict}}{{if .Reason}}: {{.Reason}}{{end}}{{if .Note}} ({{.Note}}){{end}}</td></tr>{{end}}</table>{{end}}
{{range .Rep.Segments}}<h2>Segment {{$.Rep.SegmentAttribute}} = {{.Value}}</h2><ul>{{range .Results}}<li>{{sentence . $.Rep}}</li>{{end}}</ul>{{end}}
</body></html>
`))

// pctOr writes an optional fraction as a percentage, a dash when absent.
func pctOr(x *float64) string {
	if x == nil {
		return "—"
	}
	return fmtPct(*x)
}

func writeReportHTML(w io.Writer, rep *analysis.Report) error {
	data := struct {
		Rep        *analysis.Report
		Cumulative template.HTML
		Metrics    []htmlMetric
	}{Rep: rep}
	var err error
	if rep.Cumulative != nil {
		if data.Cumulative, err = cumulativeChart(rep.Cumulative, kindOf(rep, rep.Cumulative.Metric)); err != nil {
			return fmt.Errorf("drawing the cumulative chart: %v", err)
		}
	}
	for i := 0; i < len(rep.Results); {
		j := i
		for j < len(rep.Results) && rep.Results[j].Metric == rep.Results[i].Metric {
			j++
		}
		m := htmlMetric{Name: rep.Results[i].Metric, Results: rep.Results[i:j]}
		if m.Chart, err = effectChart(m.Name, m.Results); err != nil {
			return fmt.Errorf("drawing the chart of %s: %v", m.Name, err)
		}
		data.Metrics = append(data.Metrics, m)
		i = j
	}
	return pageTmpl.Execute(w, data)
}
