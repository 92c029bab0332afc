package analysis

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/xsell/xsell/internal/money"
	"github.com/xsell/xsell/internal/stats"
)

// FileOptions are the choices of `analyze file`: which variant is control, what weights the SRM
// check expects, how to read the metric columns, besides the report's methods.
type FileOptions struct {
	Control       string             // default: a variant named "control", else the first in the file
	Weights       map[string]float64 // default: equal weights
	LowerIsBetter []string           // metric columns (or ratio names) where a decrease is the good direction
	Ratios        []RatioSpec        // ratio metrics made of two columns
	// Currency is the ISO 4217 code whose minor units the money columns hold; money columns are
	// those in Money, or when Money is empty the standard money metrics (revenue, offer_cost,
	// net_revenue, aov) present in the file.
	Currency string
	Money    []string
	Options  Options
}

// RatioSpec is a ratio metric Σ numerator / Σ denominator over the units of an arm, from two columns.
type RatioSpec struct{ Name, Num, Den string }

// ParseRatio reads "name=numerator/denominator", e.g. "aov=revenue/orders".
func ParseRatio(s string) (RatioSpec, error) {
	name, cols, ok := strings.Cut(strings.TrimSpace(s), "=")
	num, den, ok2 := strings.Cut(cols, "/")
	r := RatioSpec{Name: strings.TrimSpace(name), Num: strings.TrimSpace(num), Den: strings.TrimSpace(den)}
	if !ok || !ok2 || r.Name == "" || r.Num == "" || r.Den == "" {
		return RatioSpec{}, fmt.Errorf("a ratio must look like name=numerator/denominator (e.g. aov=revenue/orders), got %q", s)
	}
	return r, nil
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

// unitsFile is a units CSV read into columns.
type unitsFile struct {
	name     string
	columns  []string    // metric columns, in file order
	values   [][]float64 // values[column][row]
	variant  []string    // per row
	excluded int64       // units seen in two variants, whose rows are left out
}

// ReadUnits reads a CSV of one row per unit — a variant column, an optional unit_id column and
// numeric metric columns — into report input. A unit_id that appears in two variants is left
// out and counted, as `analyze report` does with shoppers seen in two variants. Error messages
// name the file and the line of the offending row.
func ReadUnits(r io.Reader, name string, fo FileOptions) (Input, error) {
	f, err := readUnitsFile(r, name)
	if err != nil {
		return Input{}, err
	}
	return f.input(fo)
}

// readUnitsFile parses the CSV and drops the rows of units seen in two variants.
func readUnitsFile(r io.Reader, name string) (*unitsFile, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: the file is empty; it needs a header with a variant column", name)
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	f := &unitsFile{name: name}
	variantCol, unitCol := -1, -1
	var idx []int
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if seen[h] {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		seen[h] = true
		switch h {
		case "variant":
			variantCol = i
		case "unit_id":
			unitCol = i
		case "":
			return nil, fmt.Errorf("%s:1: column %d has no name", name, i+1)
		default:
			f.columns = append(f.columns, h)
			idx = append(idx, i)
		}
	}
	if variantCol < 0 {
		return nil, fmt.Errorf("%s:1: no variant column in the header (%s)", name, strings.Join(header, ","))
	}
	if len(f.columns) == 0 {
		return nil, fmt.Errorf("%s:1: no metric columns besides variant and unit_id", name)
	}
	f.values = make([][]float64, len(f.columns))
	type firstSeen struct {
		variant string
		line    int
	}
	units := map[string]firstSeen{}
	multi := map[string]bool{}
	var ids []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		v := strings.TrimSpace(rec[variantCol])
		if v == "" {
			return nil, fmt.Errorf("%s:%d: the variant is empty", name, line)
		}
		id := ""
		if unitCol >= 0 {
			id = strings.TrimSpace(rec[unitCol])
			if prev, ok := units[id]; ok && id != "" {
				if prev.variant == v {
					return nil, fmt.Errorf("%s:%d: unit %q appears twice in variant %s (first on line %d); a file holds one row per unit", name, line, id, v, prev.line)
				}
				multi[id] = true
			} else if id != "" {
				units[id] = firstSeen{v, line}
			}
		}
		for j, c := range idx {
			s := strings.TrimSpace(rec[c])
			x, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%s:%d: column %s: %q is not a number", name, line, f.columns[j], s)
			}
			f.values[j] = append(f.values[j], x)
		}
		f.variant = append(f.variant, v)
		ids = append(ids, id)
	}
	if len(f.variant) == 0 {
		return nil, fmt.Errorf("%s: no rows after the header", name)
	}
	if len(multi) > 0 {
		f.dropRows(func(i int) bool { return multi[ids[i]] })
		f.excluded = int64(len(multi))
	}
	return f, nil
}

// dropRows removes the rows for which drop is true.
func (f *unitsFile) dropRows(drop func(int) bool) {
	keep := 0
	for i := range f.variant {
		if drop(i) {
			continue
		}
		f.variant[keep] = f.variant[i]
		for j := range f.values {
			f.values[j][keep] = f.values[j][i]
		}
		keep++
	}
	f.variant = f.variant[:keep]
	for j := range f.values {
		f.values[j] = f.values[j][:keep]
	}
}

// input turns the parsed file into report input.
func (f *unitsFile) input(fo FileOptions) (Input, error) {
	var order []string
	units := map[string]int64{}
	for _, v := range f.variant {
		if units[v] == 0 {
			order = append(order, v)
		}
		units[v]++
	}
	switch {
	case len(order) == 0:
		return Input{}, fmt.Errorf("%s: no rows left once the %d units seen in two variants are left out", f.name, f.excluded)
	case len(order) < 2:
		return Input{}, fmt.Errorf("%s: only one variant (%s); a comparison needs at least two", f.name, order[0])
	}
	in := Input{Experiment: f.name, Options: fo.Options, Excluded: f.excluded}
	if err := f.variants(&in, order, units, fo); err != nil {
		return Input{}, err
	}
	if fo.Currency != "" {
		if _, err := money.Parse(fo.Currency); err != nil {
			return Input{}, fmt.Errorf("currency %q %v", fo.Currency, err)
		}
		in.Currency = fo.Currency
	}
	metrics, err := f.metrics(fo)
	if err != nil {
		return Input{}, err
	}
	in.Metrics = metrics
	in.Data.Overall, in.Caps = f.arms(order, metrics, fo)
	return in, nil
}

// variants fills the variants, their weights and the control.
func (f *unitsFile) variants(in *Input, order []string, units map[string]int64, fo FileOptions) error {
	control := fo.Control
	if control == "" {
		control = order[0]
		if units["control"] > 0 {
			control = "control"
		}
	}
	if units[control] == 0 {
		return fmt.Errorf("control variant %q is not in %s (variants: %s)", control, f.name, strings.Join(order, ", "))
	}
	for _, k := range sortedKeys(fo.Weights) {
		if units[k] == 0 {
			return fmt.Errorf("weights name variant %q, which is not in %s (variants: %s)", k, f.name, strings.Join(order, ", "))
		}
	}
	for i, v := range order {
		w := 1 / float64(len(order))
		if fo.Weights != nil {
			var ok bool
			if w, ok = fo.Weights[v]; !ok {
				return fmt.Errorf("weights give no weight for variant %q", v)
			}
		}
		in.Variants = append(in.Variants, VariantSpec{Key: v, Weight: w})
		if v == control {
			in.Control = i
		}
	}
	return nil
}

// metrics describes each column (a proportion when it holds only 0 and 1, else a mean) and
// each ratio, with its direction and whether it is money.
func (f *unitsFile) metrics(fo FileOptions) ([]MetricSpec, error) {
	known := map[string]bool{}
	for _, c := range f.columns {
		known[c] = true
	}
	var out []MetricSpec
	for j, c := range f.columns {
		m := Metric{Name: c, Kind: Proportion, Direction: stats.HigherIsBetter}
		for _, x := range f.values[j] {
			if x != 0 && x != 1 {
				m.Kind = Mean
				break
			}
		}
		if std, ok := standardMetric(c); ok {
			m.Direction = std.Direction
		}
		m.Capped = m.Kind == Mean && fo.Options.Cap > 0
		out = append(out, MetricSpec{Metric: m})
	}
	for _, r := range fo.Ratios {
		for _, col := range []string{r.Num, r.Den} {
			if !known[col] {
				return nil, fmt.Errorf("ratio %s: %s has no column %q (columns: %s)", r.Name, f.name, col, strings.Join(f.columns, ", "))
			}
		}
		if known[r.Name] {
			return nil, fmt.Errorf("ratio %s: the name is already a column of %s", r.Name, f.name)
		}
		known[r.Name] = true
		out = append(out, MetricSpec{Metric: Metric{Name: r.Name, Kind: Ratio, Direction: stats.HigherIsBetter}})
	}
	for _, name := range fo.LowerIsBetter {
		i := slices.IndexFunc(out, func(m MetricSpec) bool { return m.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("--lower-is-better: %s has no metric %q (metrics: %s)", f.name, name, strings.Join(metricNames(out), ", "))
		}
		out[i].Direction = stats.LowerIsBetter
	}
	if err := markMoney(out, fo); err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return out, nil
}

// markMoney marks the money metrics: the named ones, or the standard money metrics present; a
// ratio is money when its numerator is and its denominator is not.
func markMoney(ms []MetricSpec, fo FileOptions) error {
	if fo.Currency == "" {
		if len(fo.Money) > 0 {
			return errors.New("money columns need a currency (--currency)")
		}
		return nil
	}
	isMoney := map[string]bool{}
	for _, name := range fo.Money {
		if !slices.ContainsFunc(ms, func(m MetricSpec) bool { return m.Name == name && m.Kind == Mean }) {
			return fmt.Errorf("money column %q is not a mean metric column (metrics: %s)", name, strings.Join(metricNames(ms), ", "))
		}
		isMoney[name] = true
	}
	if len(fo.Money) == 0 {
		for _, m := range ms {
			if std, ok := standardMetric(m.Name); ok && std.Money && m.Kind != Proportion {
				isMoney[m.Name] = true
			}
		}
	}
	for i := range ms {
		ms[i].Money = isMoney[ms[i].Name]
	}
	for i, m := range ms {
		if m.Kind != Ratio {
			continue
		}
		for _, r := range fo.Ratios {
			if r.Name == m.Name {
				ms[i].Money = isMoney[r.Num] && !isMoney[r.Den]
			}
		}
	}
	return nil
}

func metricNames(ms []MetricSpec) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// arms reduces the rows to per-variant sufficient statistics, capping the capped columns at
// their pooled quantiles; a ratio reads its numerator as capped when that column is.
func (f *unitsFile) arms(order []string, metrics []MetricSpec, fo FileOptions) ([]Arm, []Cap) {
	vi := map[string]int{}
	arms := make([]Arm, len(order))
	for i, v := range order {
		vi[v] = i
		arms[i].Metrics = make([]Suff, len(metrics))
	}
	for _, v := range f.variant {
		arms[vi[v]].Units++
	}
	col := map[string]int{}
	values := make([][]float64, len(f.columns))
	var caps []Cap
	for j, c := range f.columns {
		col[c] = j
		values[j] = f.values[j]
		if !metrics[j].Capped {
			continue
		}
		lower, upper := capBounds(f.values[j], fo.Options.Cap)
		cp := Cap{Metric: c, Quantile: fo.Options.Cap, Lower: lower, Upper: upper}
		values[j] = make([]float64, len(f.values[j]))
		for i, x := range f.values[j] {
			var moved bool
			values[j][i], moved = clamp(x, lower, upper)
			if moved {
				cp.Capped++
			}
		}
		caps = append(caps, cp)
	}
	for mi, m := range metrics {
		for i, v := range f.variant {
			s := &arms[vi[v]].Metrics[mi]
			if m.Kind != Ratio {
				s.Moments.Add(values[mi][i])
				continue
			}
			for _, r := range fo.Ratios {
				if r.Name == m.Name {
					s.Ratio.Add(values[col[r.Num]][i], values[col[r.Den]][i])
				}
			}
		}
	}
	return arms, caps
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
