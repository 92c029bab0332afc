package console

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/xsell/xsell/internal/experiments"
)

// previewView is the "which variant would this shopper get" form and its answer.
type previewView struct {
	Shopper    string
	Attributes string
	Problems   []string
	Answer     *experiments.Assignment
	// AsIfRunning says the experiment is not running, so the answer is the one it would give
	// if it were.
	AsIfRunning bool
	Variant     *experiments.Variant
}

// Limits of a preview's input.
const (
	maxPreviewShopper = 256
	maxPreviewAttrs   = 100
)

// preview answers for one shopper with the real assignment code, on the experiment as stored
// now, without recording an exposure. An experiment that is not running is asked as if it
// were, so that a draft's targeting and weights can be checked before it starts.
func (c *Console) preview(e *experiments.Experiment, shopper, attrText string) *previewView {
	v := &previewView{Shopper: shopper, Attributes: attrText}
	if shopper == "" || len(shopper) > maxPreviewShopper {
		v.Problems = append(v.Problems, fmt.Sprintf("Enter a shopper id (1 to %d characters).", maxPreviewShopper))
	}
	attrs, problems := parseAttributes(attrText)
	v.Problems = append(v.Problems, problems...)
	if len(v.Problems) > 0 {
		return v
	}
	asked := *e
	if asked.Status != experiments.StatusRunning {
		asked.Status, v.AsIfRunning = experiments.StatusRunning, true
	}
	snap, err := experiments.NewSnapshot([]*experiments.Experiment{&asked}, c.now())
	if err != nil {
		v.Problems = append(v.Problems, "The experiment cannot be compiled for assignment: "+err.Error())
		return v
	}
	// A nil recorder: the preview records no exposure.
	answers := snap.Assign(shopper, attrs, []string{e.Key}, nil, nil)
	if len(answers) == 1 {
		v.Answer = &answers[0]
		if a := v.Answer; a.Variant != nil {
			for i := range e.Variants {
				if e.Variants[i].Key == *a.Variant {
					v.Variant = &e.Variants[i]
				}
			}
		}
	}
	return v
}

// parseAttributes reads key=value lines. A value that reads as JSON (a number, true, false,
// null, a quoted string, a list or an object) is that JSON value, anything else is a string:
// country=IT is "IT", age=30 is 30, tags=["vip"] is a list.
func parseAttributes(text string) (map[string]any, []string) {
	attrs := map[string]any{}
	var problems []string
	for _, l := range pairLines(text) {
		switch {
		case !l.ok:
			problems = append(problems, "Line "+strconv.Itoa(l.n)+": write attribute=value, such as country=IT.")
			continue
		case len(attrs) >= maxPreviewAttrs:
			problems = append(problems, fmt.Sprintf("At most %d attributes.", maxPreviewAttrs))
			return attrs, problems
		}
		var x any
		if err := json.Unmarshal([]byte(l.value), &x); err == nil {
			attrs[l.key] = x
		} else {
			attrs[l.key] = l.value
		}
	}
	return attrs, problems
}
