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

// liftErrors feeds the lift points and their interval to an error-bar plotter.
type liftErrors struct {
	plotter.XYs
	plotter.YErrors
}

// liftChart draws each treatment's lift on one metric with its interval, in percent.
func liftChart(metric string, rs []analysis.Result) (template.HTML, error) {
	var pts liftErrors
	var names []string
	for _, r := range rs {
		if r.Lift == nil || r.LiftCI == nil {
			continue
		}
		x := float64(len(names))
		names = append(names, r.Variant)
		l := 100 * *r.Lift
		pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: l})
		pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{l - 100*r.LiftCI[0], 100*r.LiftCI[1] - l})
	}
	if len(names) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = metric + ": lift vs control, with interval"
	p.Y.Label.Text = "lift (%)"
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

// cumulativeChart draws the primary metric's lift by day of exposure, one line per treatment
// with its interval dashed.
func cumulativeChart(c *analysis.Cumulative) (template.HTML, error) {
	if c == nil || len(c.Points) == 0 {
		return "", nil
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
		s[0] = append(s[0], plotter.XY{X: x, Y: 100 * pt.Lift})
		s[1] = append(s[1], plotter.XY{X: x, Y: 100 * pt.LiftCI[0]})
		s[2] = append(s[2], plotter.XY{X: x, Y: 100 * pt.LiftCI[1]})
		byVariant[pt.Variant] = s
	}
	p := plot.New()
	p.Title.Text = c.Metric + ": cumulative lift by day of first exposure"
	p.Y.Label.Text = "lift (%)"
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
		return sentence(r, rep.Control, string(rep.Correction))
	},
	"value": func(r analysis.Result, x float64) string { return fmtValue(r.Kind, x) },
	"diff":  func(r analysis.Result) string { return fmtDiff(r.Kind, r.Diff) },
	"pct":   pctOr,
	"deref": func(x *float64) float64 { return *x },
	"num": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return fmt.Sprintf("%.4g", *x)
	},
	"ci": func(r analysis.Result, lift bool) string {
		if lift {
			return fmtInterval(r.LiftCI, fmtPct)
		}
		return fmtInterval(r.DiffCI, func(x float64) string { return fmtDiff(r.Kind, x) })
	},
	"p": func(x *float64) string {
		if x == nil {
			return "—"
		}
		return fmtP(*x)
	},
	"share": func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
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
Method: {{.Rep.Method}}{{if .Rep.CUPED}} with CUPED{{end}}, alpha {{.Rep.Alpha}}, correction {{.Rep.Correction}}.</p>
<table><tr><th>variant</th><th>units</th><th>share</th><th>expected</th></tr>
{{range .Rep.Variants}}<tr><td>{{.Key}}</td><td>{{.Units}}</td><td>{{share .ObservedShare}}</td><td>{{share .ExpectedWeight}}</td></tr>{{end}}</table>
<p>SRM check: {{if .Rep.SRM.PValue}}chi2 = {{printf "%.2f" (deref .Rep.SRM.Chi2)}}, p = {{p .Rep.SRM.PValue}}{{if .Rep.SRM.Mismatch}} — MISMATCH{{else}} — ok{{end}}{{else}}not computed ({{.Rep.SRM.Reason}}){{end}}.
{{if .Rep.ExcludedMultipleVariants}}Left out: {{.Rep.ExcludedMultipleVariants}} shoppers seen in two variants.{{end}}</p>
{{range .Rep.Warnings}}<p class="muted">Warning: {{.}}</p>{{end}}
{{if .Cumulative}}<h2>Cumulative lift over days</h2>{{.Cumulative}}{{end}}
{{range .Metrics}}<h2>{{.Name}}</h2>
{{if .Chart}}{{.Chart}}{{else}}<p class="muted">No lift could be computed for this metric.</p>{{end}}
<table><tr><th>variant</th><th>units</th><th>mean</th><th>diff</th><th>diff CI</th><th>lift</th><th>lift CI</th><th>p</th><th>p adj</th></tr>
{{with index .Results 0}}<tr><td>{{$.Rep.Control}} (control)</td><td>{{.ControlUnits}}</td><td>{{value . .ControlMean}}</td><td></td><td></td><td></td><td></td><td></td><td></td></tr>{{end}}
{{range .Results}}<tr{{if .Significant}} class="sig"{{end}}><td>{{.Variant}}</td><td>{{.TreatmentUnits}}</td><td>{{value . .TreatmentMean}}</td><td>{{diff .}}</td><td>{{ci . false}}</td><td>{{pct .Lift}}</td><td>{{ci . true}}</td><td>{{p .PValue}}</td><td>{{p .PAdjusted}}</td></tr>{{end}}
</table><ul>{{range .Results}}<li>{{sentence . $.Rep}}</li>{{end}}</ul>
{{end}}
{{if .Rep.Guardrails}}<h2>Guardrails</h2><table><tr><th>metric</th><th>variant</th><th>margin</th><th>estimate</th><th>bound</th><th>p</th><th>verdict</th></tr>
{{range .Rep.Guardrails}}<tr><td>{{.Metric}}</td><td>{{.Variant}}</td><td>{{.Margin}}{{if .Relative}} (relative){{end}}</td><td>{{num .Estimate}}</td><td>{{num .Bound}}</td><td>{{p .PValue}}</td><td>{{.Verdict}}{{if .Reason}}: {{.Reason}}{{end}}</td></tr>{{end}}</table>{{end}}
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
	if data.Cumulative, err = cumulativeChart(rep.Cumulative); err != nil {
		return fmt.Errorf("drawing the cumulative chart: %v", err)
	}
	for i := 0; i < len(rep.Results); {
		j := i
		for j < len(rep.Results) && rep.Results[j].Metric == rep.Results[i].Metric {
			j++
		}
		m := htmlMetric{Name: rep.Results[i].Metric, Results: rep.Results[i:j]}
		if m.Chart, err = liftChart(m.Name, m.Results); err != nil {
			return fmt.Errorf("drawing the chart of %s: %v", m.Name, err)
		}
		data.Metrics = append(data.Metrics, m)
		i = j
	}
	return pageTmpl.Execute(w, data)
}
