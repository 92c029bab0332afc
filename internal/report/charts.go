package report

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
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

// tip is a point of a chart with the text a reader sees when they point at it.
type tip struct {
	x, y float64 // in data coordinates
	text string
}

// tips is a plotter that draws nothing: it notes where its points land on the canvas, so
// that svgOf can put a <title> there, which browsers show as a tooltip with no script.
type tips struct {
	points []tip
	at     []vg.Point // canvas coordinates, filled when the plot is drawn
}

// Plot implements plot.Plotter.
func (t *tips) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	t.at = t.at[:0]
	for _, pt := range t.points {
		t.at = append(t.at, vg.Point{X: trX(pt.x), Y: trY(pt.y)})
	}
}

// svgOf renders a plot as an SVG element to inline into the page (no XML prolog, no external
// reference, so the page reads with no network), labelled for screen readers with its title,
// with a tooltip on each point of tt.
func svgOf(p *plot.Plot, w, h vg.Length, tt *tips) (template.HTML, error) {
	if tt != nil {
		p.Add(tt)
	}
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
	s = strings.Replace(s, "<svg ", fmt.Sprintf(`<svg role="img" aria-label="%s" `, html.EscapeString(p.Title.Text)), 1)
	if tt != nil && len(tt.at) > 0 {
		var g strings.Builder
		g.WriteString(`<g class="tips">`)
		for i, at := range tt.at {
			// The canvas's origin is at the bottom left; SVG's at the top left.
			fmt.Fprintf(&g, `<circle cx="%.2f" cy="%.2f" r="9" fill="#000" fill-opacity="0"><title>%s</title></circle>`,
				at.X.Points(), h.Points()-at.Y.Points(), html.EscapeString(tt.points[i].text))
		}
		g.WriteString(`</g></svg>`)
		s = strings.TrimSuffix(strings.TrimSpace(s), "</svg>") + g.String()
	}
	return template.HTML(s), nil // our own plot's markup; the tooltips' text is escaped
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

// EffectChart draws each treatment's effect on one metric with its interval: the lift where
// every result has one, else the difference; empty when there is none.
func EffectChart(metric string, rs []analysis.Result) (template.HTML, error) {
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
	tt := &tips{}
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
		tt.points = append(tt.points, tip{x: x, y: e, text: effectTip(r, useLift)})
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
	return svgOf(p, vg.Points(max(360, 140+90*float64(len(names)))), vg.Points(260), tt)
}

// effectTip is a chart point's tooltip: the effect and its interval in the table's words.
func effectTip(r analysis.Result, lift bool) string {
	if lift {
		return fmt.Sprintf("%s: lift %s, interval %s", r.Variant, Pct(*r.Lift), Interval(r.LiftCI, Pct))
	}
	a := AmountsOf(r, true)
	return fmt.Sprintf("%s: difference %s, interval %s", r.Variant, a.Diff(r.Diff), Interval(r.DiffCI, a.Diff))
}

// CumulativeChart draws the primary metric by day of first exposure, one line per treatment
// with its always-valid confidence sequence dashed: the lift where every point has one, else
// the difference. A sequence may be looked at every day, which a daily fixed interval may not.
func CumulativeChart(c *analysis.Cumulative, kind analysis.Kind) (template.HTML, error) {
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
	tt := &tips{}
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
		tt.points = append(tt.points, tip{x: x, y: scale.value(est), text: cumulativeTip(pt, useLift, kind, c.Currency)})
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
	// Wide enough for the title, which names the dashed lines.
	return svgOf(p, vg.Points(760), vg.Points(320), tt)
}

// cumulativeTip is a day's tooltip on the cumulative chart.
func cumulativeTip(pt analysis.CumulativePoint, lift bool, kind analysis.Kind, currency string) string {
	if lift {
		return fmt.Sprintf("%s, %s: lift %s, sequence %s, %s", pt.Variant, pt.Day, Pct(*pt.Lift), Interval(pt.LiftCS, Pct), Plural(pt.Units, "shopper"))
	}
	a := Amounts{Kind: kind, Currency: currency, Symbol: true}
	return fmt.Sprintf("%s, %s: difference %s, sequence %s, %s", pt.Variant, pt.Day, a.Diff(pt.Diff), Interval(&pt.DiffCS, a.Diff), Plural(pt.Units, "shopper"))
}
