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

// svgOf renders a plot as an SVG element to inline into a page (no XML prolog, no external
// reference, so the page reads with no network), labelled for screen readers, with a
// tooltip on each point of tt.
func svgOf(p *plot.Plot, w, h vg.Length, label string, tt *tips) (template.HTML, error) {
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
	s = strings.Replace(s, "<svg ", fmt.Sprintf(`<svg role="img" aria-label="%s" `, html.EscapeString(label)), 1)
	if tt != nil && len(tt.at) > 0 {
		var g strings.Builder
		g.WriteString(`<g class="tips">`)
		for i, at := range tt.at {
			// The canvas's origin is at the bottom left; SVG's at the top left.
			fmt.Fprintf(&g, `<circle cx="%.2f" cy="%.2f" r="9" fill="#000" fill-opacity="0"><title>%s</title></circle>`,
				at.X.Points(), h.Points()-at.Y.Points(), html.EscapeString(tt.points[i].text))
		}
		g.WriteString(`</g></svg>`)
		s = strings.TrimSpace(s)
		s = strings.TrimSuffix(s, "</svg>") + g.String()
	}
	return template.HTML(s), nil // our own plot's markup; tooltip text is escaped
}

// liftErrors feeds the lift points and their interval to an error-bar plotter.
type liftErrors struct {
	plotter.XYs
	plotter.YErrors
}

// LiftChart draws each treatment's lift on one metric with its interval, in percent; empty
// when no lift could be computed.
func LiftChart(metric string, rs []analysis.Result) (template.HTML, error) {
	var pts liftErrors
	var names []string
	tt := &tips{}
	for _, r := range rs {
		if r.Lift == nil || r.LiftCI == nil {
			continue
		}
		x := float64(len(names))
		names = append(names, r.Variant)
		l := 100 * *r.Lift
		pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: l})
		pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{l - 100*r.LiftCI[0], 100*r.LiftCI[1] - l})
		tt.points = append(tt.points, tip{x: x, y: l, text: fmt.Sprintf("%s: lift %s, interval %s", r.Variant, Pct(*r.Lift), Interval(r.LiftCI, Pct))})
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
	return svgOf(p, vg.Points(max(360, 140+90*float64(len(names)))), vg.Points(260), p.Title.Text, tt)
}

// CumulativeChart draws the primary metric's lift by day of exposure, one line per treatment
// with its interval dashed; empty when there is nothing to draw.
func CumulativeChart(c *analysis.Cumulative) (template.HTML, error) {
	if c == nil || len(c.Points) == 0 {
		return "", nil
	}
	byVariant := map[string][3]plotter.XYs{}
	var order []string
	tt := &tips{}
	for _, pt := range c.Points {
		if pt.Lift == nil || pt.LiftCS == nil {
			continue
		}
		d, err := time.Parse(time.DateOnly, pt.Day)
		if err != nil {
			return "", err
		}
		x := float64(d.Unix())
		s, ok := byVariant[pt.Variant]
		if !ok {
			order = append(order, pt.Variant)
		}
		s[0] = append(s[0], plotter.XY{X: x, Y: 100 * *pt.Lift})
		s[1] = append(s[1], plotter.XY{X: x, Y: 100 * pt.LiftCS[0]})
		s[2] = append(s[2], plotter.XY{X: x, Y: 100 * pt.LiftCS[1]})
		byVariant[pt.Variant] = s
		tt.points = append(tt.points, tip{x: x, y: 100 * *pt.Lift,
			text: fmt.Sprintf("%s, %s: lift %s, interval %s, %d shoppers", pt.Variant, pt.Day, Pct(*pt.Lift), Interval(pt.LiftCS, Pct), pt.Units)})
	}
	if len(order) == 0 {
		return "", nil
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
	return svgOf(p, vg.Points(640), vg.Points(300), p.Title.Text, tt)
}
