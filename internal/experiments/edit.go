package experiments

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/xsell/xsell/internal/apperr"
)

// The rules of an edit (PUT): which fields changed, which of them the experiment's status lets
// change (SPEC §3), and the server's own fields a client may send back as it read them.

// runningEditable are the fields a started experiment may change (SPEC §3).
// Caps and budgets are operational limits, not the treatment, so they may change too; a
// variant's own frequency_cap is its treatment, and changes with the variants.
var runningEditable = []string{"name", "hypothesis", "metrics", "targeting", "coverage", "forced",
	"frequency_cap", "budget", variantBudgets}

// variantBudgets names the variants' budgets in a diff: they change apart from the variants,
// whose other fields need a new phase.
const variantBudgets = "variants[].budget"

// stoppedEditable are the fields a stopped experiment may change: descriptions for the record.
var stoppedEditable = []string{"name", "hypothesis", "metrics"}

// phaseFields can change only through a new phase, which re-randomises.
var phaseFields = []string{"variants", "seed", "allocation"}

// editable says which changed fields the status forbids.
func editable(st Status, changes map[string]any) error {
	if !st.Started() {
		return nil
	}
	allowed := runningEditable
	if st == StatusStopped {
		allowed = stoppedEditable
	}
	var p apperr.Problems
	var needPhase bool
	for _, f := range slices.Sorted(maps.Keys(changes)) {
		switch {
		case slices.Contains(allowed, f):
		case st != StatusStopped && slices.Contains(phaseFields, f):
			needPhase = true
			p.Add(f, "requires_new_phase", "a started experiment changes %s only through POST /v1/experiments/{key}/phases, which re-randomises", f)
		default:
			p.Add(f, "not_editable", "cannot change once the experiment is %s", st)
		}
	}
	if p.Len() == 0 {
		return nil
	}
	err := p.Err().(*apperr.Error)
	err.Code = apperr.Conflict
	if needPhase {
		err.Code = apperr.RequiresNewPhase
	}
	return err
}

// diff lists the top-level fields that differ, each with its old and new value; the
// variants' budgets are compared as one field of their own, variantBudgets (by variant key).
func diff(a, b Definition) map[string]any {
	ab, bb := splitBudgets(&a), splitBudgets(&b)
	var am, bm map[string]json.RawMessage
	_ = json.Unmarshal(jsonb(a), &am)
	_ = json.Unmarshal(jsonb(b), &bm)
	out := map[string]any{}
	for k, v := range bm {
		if !sameJSON(am[k], v) {
			out[k] = map[string]json.RawMessage{"from": orNull(am[k]), "to": v}
		}
	}
	for k, v := range am {
		if _, ok := bm[k]; !ok {
			out[k] = map[string]json.RawMessage{"from": v, "to": json.RawMessage("null")}
		}
	}
	if x, y := jsonb(ab), jsonb(bb); !sameJSON(x, y) {
		out[variantBudgets] = map[string]json.RawMessage{"from": orNull(x), "to": orNull(y)}
	}
	return out
}

// splitBudgets takes the budgets out of a copy of d's variants and returns them by variant key.
func splitBudgets(d *Definition) map[string]*Budget {
	var out map[string]*Budget
	vs := slices.Clone(d.Variants)
	for i := range vs {
		if vs[i].Budget != nil {
			if out == nil {
				out = map[string]*Budget{}
			}
			out[vs[i].Key] = vs[i].Budget
			vs[i].Budget = nil
		}
	}
	d.Variants = vs
	return out
}

func orNull(r json.RawMessage) json.RawMessage {
	if r == nil {
		return json.RawMessage("null")
	}
	return r
}

// sameJSON compares two JSON values by meaning, so that key order and spacing do not count.
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return string(jsonb(x)) == string(jsonb(y))
}

// ReadOnly holds the fields of an experiment that only the server sets, as a client read them:
// a client that GETs an experiment, changes its name and PUTs it back sends them too. Sent
// unchanged they are accepted and ignored; a changed one is refused by name, since an edit
// cannot change it. Absent fields are not compared.
type ReadOnly struct {
	Status    *Status    `json:"status,omitempty"`
	Phase     *int       `json:"phase,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	// BudgetStatus is what the budgets spent as GET showed it: it changes with every order, so
	// it is accepted as sent and ignored.
	BudgetStatus json.RawMessage `json:"budget_status,omitempty"`
	// Bandit is accepted and ignored whatever it holds: the server moves it on its own
	// schedule, so what a client read may be out of date by the time it writes.
	Bandit json.RawMessage `json:"bandit,omitempty"`
}

// check reports, in the order of the fields, each one that differs from the stored experiment.
func (r ReadOnly) check(cur *Experiment) error {
	var p apperr.Problems
	if r.Status != nil && *r.Status != cur.Status {
		p.Add("status", "read_only", "is %s, not %q: it changes only through POST /v1/experiments/{key}/start, pause, resume or stop", cur.Status, *r.Status)
	}
	if r.Phase != nil && *r.Phase != cur.Phase {
		p.Add("phase", "read_only", "is %d, not %d: it changes only through POST /v1/experiments/{key}/phases", cur.Phase, *r.Phase)
	}
	checkTime(&p, "created_at", r.CreatedAt, &cur.CreatedAt)
	checkTime(&p, "updated_at", r.UpdatedAt, &cur.UpdatedAt)
	checkTime(&p, "started_at", r.StartedAt, cur.StartedAt)
	checkTime(&p, "stopped_at", r.StoppedAt, cur.StoppedAt)
	return p.Err()
}

// checkTime reports a server-set time the client sent other than as stored.
func checkTime(p *apperr.Problems, field string, sent, stored *time.Time) {
	switch {
	case sent == nil || (stored != nil && sent.Equal(*stored)):
	case stored == nil:
		p.Add(field, "read_only", "is set by the server and not set yet: leave it out")
	default:
		p.Add(field, "read_only", "is set by the server: send %s as read, or leave it out", stored.Format(time.RFC3339Nano))
	}
}
