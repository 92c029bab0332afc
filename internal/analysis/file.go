package analysis

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/xsell/xsell/internal/stats"
)

// FileOptions are the choices of `analyze file`: which variant is control and what weights
// the SRM check expects, besides the report's methods.
type FileOptions struct {
	Control string             // default: a variant named "control", else the first in the file
	Weights map[string]float64 // default: equal weights
	Options Options
}

// ParseWeights reads "control=0.5,bundle10=0.5".
func ParseWeights(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("weights must look like control=0.5,treatment=0.5, got %q", s)
		}
		w, err := strconv.ParseFloat(v, 64)
		if err != nil || !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("weight of %q must be a positive number, got %q", k, v)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("variant %q has two weights", k)
		}
		out[k] = w
	}
	return out, nil
}

// fileColumn accumulates one metric column per variant.
type fileColumn struct {
	name    string
	idx     int
	binary  bool // every value so far is 0 or 1
	moments map[string]*stats.Moments
}

// ReadUnits reads a CSV of one row per unit — a variant column, an optional unit_id column and
// numeric metric columns — into report input. name is used in error messages, which carry the
// line number of the offending row.
func ReadUnits(r io.Reader, name string, fo FileOptions) (Input, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return Input{}, fmt.Errorf("%s: the file is empty; it needs a header with a variant column", name)
	}
	if err != nil {
		return Input{}, csvError(name, err)
	}
	variantCol := -1
	var cols []*fileColumn
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if seen[h] {
			return Input{}, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		seen[h] = true
		switch h {
		case "variant":
			variantCol = i
		case "unit_id":
		case "":
			return Input{}, fmt.Errorf("%s:1: column %d has no name", name, i+1)
		default:
			cols = append(cols, &fileColumn{name: h, idx: i, binary: true, moments: map[string]*stats.Moments{}})
		}
	}
	if variantCol < 0 {
		return Input{}, fmt.Errorf("%s:1: no variant column in the header (%s)", name, strings.Join(header, ","))
	}
	if len(cols) == 0 {
		return Input{}, fmt.Errorf("%s:1: no metric columns besides variant and unit_id", name)
	}
	var order []string
	units := map[string]int64{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Input{}, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		v := strings.TrimSpace(rec[variantCol])
		if v == "" {
			return Input{}, fmt.Errorf("%s:%d: the variant is empty", name, line)
		}
		if _, ok := units[v]; !ok {
			order = append(order, v)
		}
		units[v]++
		for _, c := range cols {
			s := strings.TrimSpace(rec[c.idx])
			x, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return Input{}, fmt.Errorf("%s:%d: column %s: %q is not a number", name, line, c.name, s)
			}
			if x != 0 && x != 1 {
				c.binary = false
			}
			m := c.moments[v]
			if m == nil {
				m = &stats.Moments{}
				c.moments[v] = m
			}
			m.Add(x)
		}
	}
	if len(order) == 0 {
		return Input{}, fmt.Errorf("%s: no rows after the header", name)
	}
	if len(order) < 2 {
		return Input{}, fmt.Errorf("%s: only one variant (%s); a comparison needs at least two", name, order[0])
	}
	in := Input{Experiment: name, Options: fo.Options}
	control := fo.Control
	if control == "" {
		control = order[0]
		if units["control"] > 0 {
			control = "control"
		}
	}
	if units[control] == 0 {
		return Input{}, fmt.Errorf("control variant %q is not in %s (variants: %s)", control, name, strings.Join(order, ", "))
	}
	for k := range fo.Weights {
		if units[k] == 0 {
			return Input{}, fmt.Errorf("weights name variant %q, which is not in %s (variants: %s)", k, name, strings.Join(order, ", "))
		}
	}
	for i, v := range order {
		w := 1 / float64(len(order))
		if fo.Weights != nil {
			var ok bool
			if w, ok = fo.Weights[v]; !ok {
				return Input{}, fmt.Errorf("weights give no weight for variant %q", v)
			}
		}
		in.Variants = append(in.Variants, VariantSpec{Key: v, Weight: w})
		if v == control {
			in.Control = i
		}
	}
	for _, c := range cols {
		m := Metric{Name: c.name, Kind: Mean, Direction: stats.HigherIsBetter}
		if std, ok := standardMetric(c.name); ok {
			m.Direction = std.Direction
		}
		if c.binary {
			m.Kind = Proportion
		}
		in.Metrics = append(in.Metrics, MetricSpec{Metric: m})
	}
	in.Data.Overall = make([]Arm, len(order))
	for i, v := range order {
		a := Arm{Units: units[v], Metrics: make([]Suff, len(cols))}
		for j, c := range cols {
			a.Metrics[j] = Suff{Moments: *c.moments[v]}
		}
		in.Data.Overall[i] = a
	}
	return in, nil
}

// csvError names the file and line of a CSV syntax error.
func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %v", name, pe.StartLine, pe.Err)
	}
	return fmt.Errorf("%s: %v", name, err)
}

// FileReport reads a units CSV and builds its report.
func FileReport(r io.Reader, name string, fo FileOptions) (*Report, error) {
	in, err := ReadUnits(r, name, fo)
	if err != nil {
		return nil, err
	}
	return Build(in)
}

// sortedKeys returns a map's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
