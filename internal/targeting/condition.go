package targeting

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Condition is a compiled targeting condition in GrowthBook's condition syntax. The zero value
// and nil target everyone.
type Condition struct {
	root cond // nil: everyone is targeted
}

// Parse validates and compiles a targeting condition; an empty or null condition targets
// everyone.
//
// It is stricter than GrowthBook's SDK, which silently evaluates mistakes to false: unknown
// operators (anywhere, including "$" keys at the top level), invalid regular expressions and
// operator arguments of the wrong type are refused with an *Error listing every problem, so
// that they are caught when an experiment is saved rather than excluding every shopper at
// checkout. Regular expressions are Go's RE2 dialect: JavaScript-only lookarounds and
// backreferences are refused rather than evaluated differently. $inGroup and $notInGroup are
// refused because xsell has no saved groups.
func Parse(raw json.RawMessage) (*Condition, error) {
	var c compiler
	return c.parse(raw)
}

// Eval reports whether a shopper with these attributes matches the condition. Attribute values
// are those encoding/json decodes into an any (float64, string, bool, nil, []any,
// map[string]any).
func (c *Condition) Eval(attrs map[string]any) bool {
	if c == nil || c.root == nil {
		return true
	}
	return c.root.matches(attrs)
}

// Problem is one thing wrong in a condition.
type Problem struct {
	// Path is the JSON path of the offending element within the condition, such as
	// $or[1].country.$in; empty for the condition itself.
	Path string
	// Code is invalid_condition, or not_supported for what xsell deliberately lacks.
	Code string
	// Message says what is wrong at Path.
	Message string
}

// The codes of a Problem.
const (
	CodeInvalid      = "invalid_condition"
	CodeNotSupported = "not_supported"
)

// Error lists every problem of a condition, in the order of its keys (sorted within each
// object) and elements, so that the same condition always gives the same list.
type Error struct {
	Problems []Problem
}

// Error returns the problems, each with its path.
func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Message
		if p.Path != "" {
			parts[i] = p.Path + ": " + p.Message
		}
	}
	return "targeting condition: " + strings.Join(parts, "; ")
}

// isEmpty says whether raw holds no condition at all.
func isEmpty(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}
