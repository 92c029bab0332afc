package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/money"
)

// The experiment form. Its inputs are named by the JSON path of the definition field they
// fill (variants[1].strategy.type), so that the problems the API's own validation reports,
// which carry those paths, land beside their inputs. The form keeps every value as typed, so
// that a page shown again after a mistake holds the user's input.

// expForm is the state of the experiment form.
type expForm struct {
	Key, Name, Hypothesis, Seed, HashAttribute, Coverage string
	Variants                                             []variantForm
	Control                                              int
	Targeting                                            string
	LayerName, LayerStart, LayerEnd                      string
	TargetProducts                                       string
	Primary                                              string
	Secondary                                            []string
	Guardrails                                           []guardrailForm
	Forced                                               string

	problems problemList
}

// variantForm is one variant's inputs.
type variantForm struct {
	Key, Name, Weight                                                  string
	Type, Products, Timing, TriggerProducts                            string
	DiscountPercent, DiscountAmount, Currency, BonusPoints, Multiplier string
	// Source, MaxProducts and MinLift are a suggestion's or bundle's learned products
	// (source "complements"); Source "" or "fixed" takes Products.
	Source, MaxProducts, MinLift string
}

// guardrailForm is one metric's guardrail inputs.
type guardrailForm struct {
	Metric   string
	On       bool
	Margin   string
	Relative bool
}

// strategyTypes and timings are the choices of a variant's selects.
var (
	strategyTypes = []experiments.StrategyType{experiments.StrategyNone, experiments.StrategySuggestion, experiments.StrategyBundle, experiments.StrategyLoyaltyPoints}
	timings       = []experiments.Timing{experiments.TimingProductPage, experiments.TimingCart, experiments.TimingCheckout, experiments.TimingPostPurchase}
)

// problemList is the problems of a form in the order found, each placed at a form field.
type problemList struct {
	list  []placedProblem
	byKey map[string][]string
}

// placedProblem is a problem with the API's path and the form field it is shown beside.
type placedProblem struct {
	Path, Field, Message string
}

func (p *problemList) add(path, message string, f *expForm) {
	field := f.fieldOf(path)
	if p.byKey == nil {
		p.byKey = map[string][]string{}
	}
	if slices.Contains(p.byKey[field], message) {
		return
	}
	p.list = append(p.list, placedProblem{Path: path, Field: field, Message: message})
	p.byKey[field] = append(p.byKey[field], message)
}

// has reports whether a problem was placed at a form field already.
func (p *problemList) has(field string) bool { return len(p.byKey[field]) > 0 }

// fieldErr is the problems of one field, for the "fielderror" template.
type fieldErr struct {
	ID       string
	Messages []string
}

// Err returns the problems placed at a form field, or nil.
func (f *expForm) Err(field string) *fieldErr {
	if m := f.problems.byKey[field]; len(m) > 0 {
		return &fieldErr{ID: fieldID(field), Messages: m}
	}
	return nil
}

// Problems lists every problem, for the summary at the top of the form.
func (f *expForm) Problems() []placedProblem { return f.problems.list }

var (
	listIndex = regexp.MustCompile(`\[\d+\]$`)
	guardPath = regexp.MustCompile(`^metrics\.guardrails\[(\d+)\]`)
)

// fieldOf maps an API path to the form field its problem is shown beside: a list's item to the
// list's input, a targeting sub-path to the targeting box, a guardrail by index to its metric.
func (f *expForm) fieldOf(path string) string {
	switch {
	case strings.HasPrefix(path, "targeting"):
		return "targeting"
	case strings.HasPrefix(path, "forced"):
		return "forced"
	case strings.HasPrefix(path, "metrics.secondary"):
		return "metrics.secondary"
	case strings.HasPrefix(path, "layer.range"):
		return "layer.range"
	}
	if m := guardPath.FindStringSubmatch(path); m != nil {
		i, _ := strconv.Atoi(m[1])
		on := f.guardrailsOn()
		if i < len(on) {
			return "metrics.guardrails." + on[i].Metric
		}
		return "metrics.guardrails"
	}
	return listIndex.ReplaceAllString(path, "")
}

// guardrailsOn are the guardrails ticked, in the order the definition lists them.
func (f *expForm) guardrailsOn() []guardrailForm {
	var out []guardrailForm
	for _, g := range f.Guardrails {
		if g.On {
			out = append(out, g)
		}
	}
	return out
}

// Types and Timings are the choices of a variant's selects.
func (f *expForm) Types() []experiments.StrategyType { return strategyTypes }

// Timings are the moments an offer can be shown.
func (f *expForm) Timings() []experiments.Timing { return timings }

// MetricNames are the metrics an experiment can be judged on.
func (f *expForm) MetricNames() []string { return experiments.MetricNames }

// IsSecondary reports whether a metric is ticked as secondary.
func (f *expForm) IsSecondary(m string) bool { return slices.Contains(f.Secondary, m) }

// newForm is the form of a new experiment: a control and two empty treatments.
func newForm() *expForm {
	f := &expForm{Primary: "cross_sell_rate", HashAttribute: "shopper_id", Coverage: "1"}
	f.Variants = []variantForm{
		{Key: "control", Name: "No offer", Weight: "0.34", Type: string(experiments.StrategyNone)},
		{Weight: "0.33", Type: string(experiments.StrategyBundle), Timing: string(experiments.TimingCart)},
		{Weight: "0.33", Type: string(experiments.StrategyLoyaltyPoints), Timing: string(experiments.TimingCheckout)},
	}
	f.Guardrails = guardrailInputs(nil)
	return f
}

// guardrailInputs lists a guardrail input per metric, ticked where the definition has one.
func guardrailInputs(gs []experiments.Guardrail) []guardrailForm {
	out := make([]guardrailForm, 0, len(experiments.MetricNames))
	for _, m := range experiments.MetricNames {
		g := guardrailForm{Metric: m, Margin: trimFloat(experiments.DefaultGuardrailMargin), Relative: true}
		for _, d := range gs {
			if d.Metric == m {
				g = guardrailForm{Metric: m, On: true, Margin: trimFloat(d.Margin), Relative: d.Relative}
			}
		}
		out = append(out, g)
	}
	return out
}

// formOf fills the form with a stored definition.
func formOf(d experiments.Definition) *expForm {
	f := &expForm{Key: d.Key, Name: d.Name, Hypothesis: d.Hypothesis, Seed: d.Seed, HashAttribute: d.HashAttribute,
		Targeting: prettyJSON(d.Targeting), TargetProducts: strings.Join(d.TargetProducts, ", ")}
	if d.Coverage != nil {
		f.Coverage = trimFloat(*d.Coverage)
	}
	for i, v := range d.Variants {
		f.Variants = append(f.Variants, variantFormOf(v))
		if v.Control {
			f.Control = i
		}
	}
	if l := d.Layer; l != nil {
		f.LayerName, f.LayerStart, f.LayerEnd = l.Name, trimFloat(l.Range[0]), trimFloat(l.Range[1])
	}
	var gs []experiments.Guardrail
	if m := d.Metrics; m != nil {
		f.Primary, f.Secondary, gs = m.Primary, m.Secondary, m.Guardrails
	}
	f.Guardrails = guardrailInputs(gs)
	keys := make([]string, 0, len(d.Forced))
	for k := range d.Forced {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k+"="+d.Forced[k])
	}
	f.Forced = strings.Join(lines, "\n")
	return f
}

func variantFormOf(v experiments.Variant) variantForm {
	s := v.Strategy
	vf := variantForm{Key: v.Key, Name: v.Name, Weight: trimFloat(v.Weight), Type: string(s.Type),
		Products: strings.Join(s.Products, ", "), Timing: string(s.Timing), TriggerProducts: strings.Join(s.TriggerProducts, ", "),
		Currency: s.Currency, Source: string(s.Source)}
	if s.MaxProducts != nil {
		vf.MaxProducts = strconv.Itoa(*s.MaxProducts)
	}
	if s.MinLift != nil {
		vf.MinLift = trimFloat(*s.MinLift)
	}
	if s.DiscountPercent != nil {
		vf.DiscountPercent = trimFloat(*s.DiscountPercent)
	}
	if s.DiscountAmount != nil {
		vf.DiscountAmount = majorUnits(*s.DiscountAmount, s.Currency)
	}
	if s.BonusPoints != nil {
		vf.BonusPoints = strconv.FormatInt(*s.BonusPoints, 10)
	}
	if s.PointsMultiplier != nil {
		vf.Multiplier = trimFloat(*s.PointsMultiplier)
	}
	return vf
}

// majorUnits writes minor units as a decimal of major units: 150 EUR → "1.50".
func majorUnits(minor int64, currency string) string {
	c := money.Lookup(currency)
	return new(big.Rat).SetFrac(big.NewInt(minor), big.NewInt(c.MinorPerMajor())).FloatString(c.Exponent())
}

// minorUnits reads a decimal of major units as whole minor units: "1.5" EUR → 150.
func minorUnits(s, currency string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, errors.New("must be an amount such as 5.00")
	}
	c := money.Lookup(currency)
	r.Mul(r, new(big.Rat).SetInt64(c.MinorPerMajor()))
	if !r.IsInt() {
		return 0, fmt.Errorf("has more decimals than %s has (%d)", c.Code(), c.Exponent())
	}
	if !r.Num().IsInt64() {
		return 0, errors.New("is too large")
	}
	return r.Num().Int64(), nil
}

// maxVariantRows bounds the rows a form post may ask for, beyond the definition's own limit.
const maxVariantRows = experiments.MaxVariants + 1

// parseForm reads the form's inputs as typed.
func parseForm(v url.Values) *expForm {
	f := &expForm{
		Key: strings.TrimSpace(v.Get("key")), Name: strings.TrimSpace(v.Get("name")), Hypothesis: strings.TrimSpace(v.Get("hypothesis")),
		Seed: strings.TrimSpace(v.Get("seed")), HashAttribute: strings.TrimSpace(v.Get("hash_attribute")),
		Coverage: strings.TrimSpace(v.Get("coverage")), Targeting: strings.TrimSpace(v.Get("targeting")),
		LayerName: strings.TrimSpace(v.Get("layer.name")), LayerStart: strings.TrimSpace(v.Get("layer.start")),
		LayerEnd: strings.TrimSpace(v.Get("layer.end")), TargetProducts: v.Get("target_products"),
		Primary: v.Get("metrics.primary"), Secondary: v["metrics.secondary"], Forced: v.Get("forced"),
	}
	n, _ := strconv.Atoi(v.Get("variant_count"))
	n = min(max(n, 0), maxVariantRows)
	for i := range n {
		p := fmt.Sprintf("variants[%d].", i)
		s := p + "strategy."
		f.Variants = append(f.Variants, variantForm{
			Key: strings.TrimSpace(v.Get(p + "key")), Name: strings.TrimSpace(v.Get(p + "name")), Weight: strings.TrimSpace(v.Get(p + "weight")),
			Type: v.Get(s + "type"), Products: v.Get(s + "products"), Timing: v.Get(s + "timing"), TriggerProducts: v.Get(s + "trigger_products"),
			DiscountPercent: strings.TrimSpace(v.Get(s + "discount_percent")), DiscountAmount: strings.TrimSpace(v.Get(s + "discount_amount")),
			Currency: strings.TrimSpace(v.Get(s + "currency")), BonusPoints: strings.TrimSpace(v.Get(s + "bonus_points")),
			Multiplier: strings.TrimSpace(v.Get(s + "points_multiplier")),
			Source:     v.Get(s + "source"), MaxProducts: strings.TrimSpace(v.Get(s + "max_products")), MinLift: strings.TrimSpace(v.Get(s + "min_lift")),
		})
	}
	f.Control, _ = strconv.Atoi(v.Get("control"))
	for _, m := range experiments.MetricNames {
		p := "metrics.guardrails." + m
		f.Guardrails = append(f.Guardrails, guardrailForm{Metric: m, On: v.Get(p) == "on",
			Margin: strings.TrimSpace(v.Get(p + ".margin")), Relative: v.Get(p+".relative") == "on"})
	}
	return f
}

// apply carries out a button of the form that edits the form itself rather than saving it:
// add a variant, remove one, split the weights equally. It reports whether there was one.
func (f *expForm) apply(op string) bool {
	switch {
	case op == "add_variant":
		if len(f.Variants) < maxVariantRows {
			f.Variants = append(f.Variants, variantForm{Type: string(experiments.StrategySuggestion), Timing: string(experiments.TimingCart)})
		}
	case strings.HasPrefix(op, "remove_variant:"):
		i, err := strconv.Atoi(strings.TrimPrefix(op, "remove_variant:"))
		if err == nil && i >= 0 && i < len(f.Variants) {
			f.Variants = slices.Delete(f.Variants, i, i+1)
			if f.Control == i {
				f.Control = 0
			} else if f.Control > i {
				f.Control--
			}
		}
	case op == "equal_weights":
		n := len(f.Variants)
		for i := range f.Variants {
			// Two decimals each, the rest to the control, so that they sum to exactly 1.
			w := float64(int(10000/float64(max(n, 1)))) / 10000
			f.Variants[i].Weight = trimFloat(w)
		}
		if n > 0 {
			rest := 1 - float64(n-1)*float64(int(10000/float64(n)))/10000
			f.Variants[min(f.Control, n-1)].Weight = trimFloat(rest)
		}
	default:
		return false
	}
	return true
}

// splitList reads SKUs separated by commas, spaces or lines.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// definition builds the definition the form describes, noting the inputs that are not even
// of the right kind (a weight that is not a number); the definition's own rules are
// checked by validate.
func (f *expForm) definition() experiments.Definition {
	d := experiments.Definition{Key: f.Key, Name: f.Name, Hypothesis: f.Hypothesis, Seed: f.Seed, HashAttribute: f.HashAttribute,
		TargetProducts: splitList(f.TargetProducts)}
	d.Coverage = f.optFloat("coverage", f.Coverage)
	d.Variants = f.variants()
	if f.Targeting != "" {
		if !json.Valid([]byte(f.Targeting)) {
			var probe any
			err := json.Unmarshal([]byte(f.Targeting), &probe)
			f.problems.add("targeting", "is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: "), f)
		} else {
			d.Targeting = json.RawMessage(f.Targeting)
		}
	}
	if f.LayerName != "" || f.LayerStart != "" || f.LayerEnd != "" {
		l := &experiments.Layer{Name: f.LayerName}
		if x := f.optFloat("layer.range", f.LayerStart); x != nil {
			l.Range[0] = *x
		}
		if x := f.optFloat("layer.range", f.LayerEnd); x != nil {
			l.Range[1] = *x
		}
		d.Layer = l
	}
	d.Metrics = f.metrics()
	d.Forced = f.forced()
	return d
}

// variants builds the variants, leaving out the parameters a variant's type does not take, as
// the form hides them.
func (f *expForm) variants() []experiments.Variant {
	out := make([]experiments.Variant, 0, len(f.Variants))
	for i, vf := range f.Variants {
		p := fmt.Sprintf("variants[%d]", i)
		v := experiments.Variant{Key: vf.Key, Name: vf.Name, Control: i == f.Control}
		if w := f.optFloat(p+".weight", vf.Weight); w != nil {
			v.Weight = *w
		} else if vf.Weight == "" {
			f.problems.add(p+".weight", "is required: a share of traffic such as 0.5", f)
		}
		s := experiments.Strategy{Type: experiments.StrategyType(vf.Type)}
		sp := p + ".strategy"
		if s.Type != experiments.StrategyNone {
			s.Products, s.TriggerProducts, s.Timing = splitList(vf.Products), splitList(vf.TriggerProducts), experiments.Timing(vf.Timing)
		}
		if (s.Type == experiments.StrategySuggestion || s.Type == experiments.StrategyBundle) && vf.Source == string(experiments.SourceComplements) {
			// Learned: the products typed in, if any, are left for the API's rules to refuse.
			s.Source, s.MinLift = experiments.SourceComplements, f.optFloat(sp+".min_lift", vf.MinLift)
			if vf.MaxProducts != "" {
				if n, err := strconv.Atoi(vf.MaxProducts); err != nil {
					f.problems.add(sp+".max_products", fmt.Sprintf("must be a whole number, got %q", vf.MaxProducts), f)
				} else {
					s.MaxProducts = &n
				}
			}
		}
		if s.Type == experiments.StrategyBundle {
			s.DiscountPercent = f.optFloat(sp+".discount_percent", vf.DiscountPercent)
			if vf.DiscountAmount != "" {
				s.Currency = vf.Currency
				if n, err := minorUnits(vf.DiscountAmount, vf.Currency); err != nil {
					f.problems.add(sp+".discount_amount", err.Error(), f)
				} else {
					s.DiscountAmount = &n
				}
			}
		}
		if s.Type == experiments.StrategyLoyaltyPoints {
			if vf.BonusPoints != "" {
				n, err := strconv.ParseInt(vf.BonusPoints, 10, 64)
				if err != nil {
					f.problems.add(sp+".bonus_points", "must be a whole number of points, such as 200", f)
				} else {
					s.BonusPoints = &n
				}
			}
			s.PointsMultiplier = f.optFloat(sp+".points_multiplier", vf.Multiplier)
		}
		v.Strategy = s
		out = append(out, v)
	}
	return out
}

func (f *expForm) metrics() *experiments.Metrics {
	m := &experiments.Metrics{Primary: f.Primary, Secondary: f.Secondary}
	for _, g := range f.guardrailsOn() {
		margin := f.optFloat("metrics.guardrails."+g.Metric, g.Margin)
		if margin == nil {
			f.problems.add("metrics.guardrails."+g.Metric, "needs a margin: the largest harm tolerated, such as 0.05", f)
			continue
		}
		m.Guardrails = append(m.Guardrails, experiments.Guardrail{Metric: g.Metric, Margin: *margin, Relative: g.Relative})
	}
	return m
}

// forced reads "shopper_id=variant_key" lines.
func (f *expForm) forced() map[string]string {
	out := map[string]string{}
	for _, l := range pairLines(f.Forced) {
		switch {
		case !l.ok || l.value == "":
			f.problems.add("forced", fmt.Sprintf("line %d: write shopper_id=variant_key", l.n), f)
		case out[l.key] != "":
			f.problems.add("forced", fmt.Sprintf("line %d: shopper %q is forced twice", l.n, l.key), f)
		default:
			out[l.key] = l.value
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// pairLine is one "key=value" line of a text box.
type pairLine struct {
	n          int // the line's number, from 1
	key, value string
	ok         bool // there is an = and a key before it
}

// pairLines reads the non-empty "key=value" lines of a text box, trimmed.
func pairLines(text string) []pairLine {
	var out []pairLine
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		out = append(out, pairLine{n: i + 1, key: k, value: strings.TrimSpace(v), ok: ok && k != ""})
	}
	return out
}

// optFloat reads a number input: nil when empty, or when not a number (noted at path).
func (f *expForm) optFloat(path, s string) *float64 {
	if s == "" {
		return nil
	}
	x, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		f.problems.add(path, fmt.Sprintf("must be a number, got %q", s), f)
		return nil
	}
	return &x
}

// validate checks the definition by the API's own rules and places every problem; a path
// that already has a problem of the wrong kind of input keeps that one only. It reports
// whether the definition is valid.
func (f *expForm) validate(d experiments.Definition) bool {
	d.Normalize()
	f.addProblems(d.Validate())
	return len(f.problems.list) == 0
}

// addProblems places the details of an *apperr.Error; anything else is not the form's.
func (f *expForm) addProblems(err error) {
	var e *apperr.Error
	if !errors.As(err, &e) {
		return
	}
	if len(e.Details) == 0 {
		f.problems.add("", e.Message, f)
		return
	}
	kinds := map[string]bool{}
	for _, p := range f.problems.list {
		kinds[p.Path] = true
	}
	for _, d := range e.Details {
		if kinds[d.Field] {
			continue
		}
		f.problems.add(d.Field, d.Message, f)
	}
}
