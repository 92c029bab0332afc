package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/results"
)

func (c *Console) experimentRoutes() {
	b := Base + "experiments"
	c.handle("GET "+b, reader, c.listExperiments)
	c.handle("GET "+b+"/new", admin, c.newExperiment)
	c.handle("POST "+b+"/new", admin, c.createExperiment)
	c.handle("GET "+b+"/{key}", reader, c.showExperiment)
	c.handle("GET "+b+"/{key}/edit", admin, c.editExperiment)
	c.handle("POST "+b+"/{key}/edit", admin, c.updateExperiment)
	c.handle("GET "+b+"/{key}/confirm/{action}", admin, c.confirmAction)
	c.handle("POST "+b+"/{key}/action/{action}", admin, c.doAction)
	c.handle("GET "+b+"/{key}/phase", admin, c.phaseForm)
	c.handle("POST "+b+"/{key}/phase", admin, c.newPhase)
	c.handle("GET "+b+"/{key}/history", reader, c.history)
	c.handle("GET "+b+"/{key}/results", reader, c.resultsPage)
	c.handle("POST "+b+"/{key}/results/refresh", reader, c.refreshResults)
}

// listPageSize is how many experiments one page of the list shows.
const listPageSize = 100

// listView is the data of the experiments list.
type listView struct {
	Status, Search string
	Statuses       []experiments.Status
	Rows           []listRow
	Next           string // query of the next page, "" on the last
}

// listRow is one experiment of the list with its newest results.
type listRow struct {
	*experiments.Experiment
	Results *results.Info
}

var statuses = []experiments.Status{experiments.StatusDraft, experiments.StatusRunning, experiments.StatusPaused, experiments.StatusStopped}

func (c *Console) listExperiments(q *request) error {
	qs := q.r.URL.Query()
	v := listView{Status: qs.Get("status"), Search: qs.Get("q"), Statuses: statuses}
	if v.Status != "" && !contains(statuses, experiments.Status(v.Status)) {
		e := apperr.New(apperr.Invalid, "status must be one of draft, running, paused, stopped, got %q", v.Status)
		e.Details = []apperr.Detail{{Field: "status", Code: "not_allowed", Message: e.Message}}
		return e
	}
	if len(v.Search) > 200 {
		return apperr.New(apperr.Invalid, "the search is longer than 200 characters")
	}
	list, next, err := c.deps.Experiments.List(q.ctx(), experiments.ListFilter{
		Status: experiments.Status(v.Status), Search: v.Search, After: qs.Get("after"), Limit: listPageSize})
	if err != nil {
		return err
	}
	keys := make([]string, len(list))
	for i, e := range list {
		keys[i] = e.Key
	}
	sums, err := c.deps.Results.Store().Summaries(q.ctx(), keys)
	if err != nil {
		return err
	}
	for _, e := range list {
		row := listRow{Experiment: e}
		if s, ok := sums[e.Key]; ok {
			row.Results = &s
		}
		v.Rows = append(v.Rows, row)
	}
	if next != "" {
		nq := url.Values{"after": {next}}
		if v.Status != "" {
			nq.Set("status", v.Status)
		}
		if v.Search != "" {
			nq.Set("q", v.Search)
		}
		v.Next = nq.Encode()
	}
	c.render(q, http.StatusOK, "experiments", "Experiments", v)
	return nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// actor names the signed-in key for the audit log.
func (q *request) actor() experiments.Actor {
	return experiments.Actor{Role: string(q.sess.Role), Name: q.sess.KeyName}
}

// reloadAssignments makes this server's assignment cache see a write at once; other servers
// hear of it through NOTIFY.
func (c *Console) reloadAssignments(q *request) {
	if c.deps.Assignments == nil {
		return
	}
	if err := c.deps.Assignments.Load(q.ctx()); err != nil {
		c.log.Warn("console: reloading the assignment cache after a write", "error", err)
	}
}

// experiment reads the experiment named in the path.
func (c *Console) experiment(q *request) (*experiments.Experiment, error) {
	return c.deps.Experiments.Get(q.ctx(), q.r.PathValue("key"))
}

// showView is the data of an experiment's page.
type showView struct {
	*experiments.Experiment
	Actions []actionInfo
	Preview *previewView
	Results *results.Info
}

func (c *Console) showExperiment(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	v := showView{Experiment: e, Actions: actionsFor(e.Status)}
	if q.r.URL.Query().Has("shopper") {
		v.Preview = c.preview(e, q.r.URL.Query().Get("shopper"), q.r.URL.Query().Get("attributes"))
	} else {
		v.Preview = &previewView{}
	}
	sums, err := c.deps.Results.Store().Summaries(q.ctx(), []string{e.Key})
	if err != nil {
		return err
	}
	if s, ok := sums[e.Key]; ok {
		v.Results = &s
	}
	c.renderView(q, http.StatusOK, "experiment", view{Title: e.Key, Nav: "experiments", Data: v})
	return nil
}

// formView is the data of the experiment form page.
type formView struct {
	Form *expForm
	// Experiment is the stored experiment being edited; nil for a new one.
	Experiment *experiments.Experiment
	// Editable are the fields the status lets change; nil means all.
	Editable map[string]bool
	Version  int
	// Conflict, when set, is what someone else saved since the user's version.
	Conflict []experiments.AuditEntry
	Action   string
	Phase    bool // the new-phase form: variants and coverage only
	Prefill  string
}

// Can reports whether a field may be edited.
func (v formView) Can(field string) bool { return v.Editable == nil || v.Editable[field] }

func (c *Console) newExperiment(q *request) error {
	f := newForm()
	v := formView{Form: f, Action: Base + "experiments/new"}
	qs := q.r.URL.Query()
	if trigger, offer := qs.Get("trigger"), qs.Get("offer"); trigger != "" && offer != "" {
		if len(trigger) > experiments.MaxSKULen || len(offer) > experiments.MaxSKULen {
			return apperr.New(apperr.Invalid, "a SKU is at most %d bytes", experiments.MaxSKULen)
		}
		v.Form = bundleForm(trigger, offer)
		v.Prefill = "Filled in from the bundle idea " + trigger + " → " + offer + ": check the discount and the points, then save."
	}
	c.renderView(q, http.StatusOK, "form", view{Title: "New experiment", Nav: "experiments", Data: v})
	return nil
}

func (c *Console) createExperiment(q *request) error {
	f := parseForm(q.r.PostForm)
	v := formView{Form: f, Action: Base + "experiments/new"}
	if f.apply(q.r.PostFormValue("op")) {
		c.renderView(q, http.StatusOK, "form", view{Title: "New experiment", Nav: "experiments", Data: v})
		return nil
	}
	def := f.definition()
	if f.validate(def) {
		_, err := c.deps.Experiments.Create(q.ctx(), q.actor(), def)
		switch {
		case err == nil:
			c.reloadAssignments(q)
			return q.redirect(Base + "experiments/" + url.PathEscape(def.Key) + "?done=created")
		case apperr.CodeOf(err) == apperr.AlreadyExists:
			f.problems.add("key", "an experiment with this key exists already: choose another key", f)
		case apperr.CodeOf(err) == apperr.Invalid:
			f.addProblems(err)
		default:
			return err
		}
	}
	c.renderView(q, http.StatusBadRequest, "form", view{Title: "New experiment", Nav: "experiments", Data: v})
	return nil
}

// editableFields are the fields of the form a status lets change (SPEC §3); nil: all.
func editableFields(st experiments.Status) map[string]bool {
	switch st {
	case experiments.StatusDraft:
		return nil
	case experiments.StatusStopped:
		return map[string]bool{"name": true, "hypothesis": true, "metrics": true}
	}
	return map[string]bool{"name": true, "hypothesis": true, "metrics": true, "targeting": true, "coverage": true, "forced": true}
}

func (c *Console) editExperiment(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	v := formView{Form: formOf(e.Definition), Experiment: e, Editable: editableFields(e.Status), Version: e.Version,
		Action: Base + "experiments/" + url.PathEscape(e.Key) + "/edit"}
	c.renderView(q, http.StatusOK, "form", view{Title: "Edit " + e.Key, Nav: "experiments", Data: v})
	return nil
}

func (c *Console) updateExperiment(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	f := parseForm(q.r.PostForm)
	version, _ := strconv.Atoi(q.r.PostFormValue("version"))
	v := formView{Form: f, Experiment: e, Editable: editableFields(e.Status), Version: version,
		Action: Base + "experiments/" + url.PathEscape(e.Key) + "/edit"}
	title := "Edit " + e.Key
	if v.Editable == nil && f.apply(q.r.PostFormValue("op")) {
		c.renderView(q, http.StatusOK, "form", view{Title: title, Nav: "experiments", Data: v})
		return nil
	}
	f.Key = e.Key
	if v.Editable != nil {
		// A started experiment's form does not hold its variants, layer or seed: whatever a
		// post says of them is not read.
		f.Variants, f.LayerName, f.LayerStart, f.LayerEnd = nil, "", "", ""
	}
	def := f.definition()
	// The form has no allocation fields: a bandit's settings stay as the API set them.
	def.Allocation = e.Allocation
	if v.Editable != nil {
		def = overlay(e.Definition, def, v.Editable)
		f.Variants = formOf(e.Definition).Variants
	}
	if !f.validate(def) {
		c.renderView(q, http.StatusBadRequest, "form", view{Title: title, Nav: "experiments", Data: v})
		return nil
	}
	_, err = c.deps.Experiments.Update(q.ctx(), q.actor(), e.Key, def, experiments.ReadOnly{}, &version)
	return c.saved(q, &v, title, "saved", version, err)
}

// saved answers the save of an experiment's form: on success a redirect to the experiment
// saying done; on a version conflict the form again with what was saved since version; on a
// refused definition the form again with its fields marked; any other error as it is.
func (c *Console) saved(q *request, v *formView, title, done string, version int, err error) error {
	e := v.Experiment
	if err == nil {
		c.reloadAssignments(q)
		return q.redirect(Base + "experiments/" + url.PathEscape(e.Key) + "?done=" + done)
	}
	status := http.StatusBadRequest
	switch apperr.CodeOf(err) {
	case apperr.VersionConflict:
		// Someone saved first: say what they changed, keep the user's input, and let a second
		// save knowingly replace theirs.
		if err := c.conflict(q, v, e, version); err != nil {
			return err
		}
		status = http.StatusConflict
	case apperr.Invalid, apperr.Conflict, apperr.RequiresNewPhase:
		v.Form.addProblems(err)
	default:
		return err
	}
	c.renderView(q, status, "form", view{Title: title, Nav: "experiments", Data: *v})
	return nil
}

// conflict fills a form refused as stale with what was saved since the user's version, and
// bases it on the stored version, so that saving again replaces those changes knowingly.
func (c *Console) conflict(q *request, v *formView, e *experiments.Experiment, version int) error {
	hist, err := c.deps.Experiments.History(q.ctx(), e.Key)
	if err != nil {
		return err
	}
	v.Version = e.Version
	for _, h := range hist {
		if h.Version > version {
			v.Conflict = append(v.Conflict, h)
		}
		v.Version = max(v.Version, h.Version)
	}
	return nil
}

// overlay takes the fields a started experiment may change from the form, the rest as stored.
func overlay(stored, form experiments.Definition, editable map[string]bool) experiments.Definition {
	out := stored
	if editable["name"] {
		out.Name = form.Name
	}
	if editable["hypothesis"] {
		out.Hypothesis = form.Hypothesis
	}
	if editable["metrics"] {
		out.Metrics = form.Metrics
	}
	if editable["targeting"] {
		out.Targeting = form.Targeting
	}
	if editable["coverage"] {
		out.Coverage = form.Coverage
	}
	if editable["forced"] {
		out.Forced = form.Forced
	}
	return out
}

// actionInfo is a lifecycle button and what its confirmation says will happen.
type actionInfo struct {
	Name, Label, Explain string
	Danger               bool
}

var actionList = []actionInfo{
	{Name: "start", Label: "Start", Explain: "Shoppers who match the targeting are put in the variants by their weights from now on, and their first exposure is recorded for the analysis. The variants, weights and seed freeze: changing them later takes a new phase, which re-randomises."},
	{Name: "pause", Label: "Pause", Explain: "Every shopper gets the control's experience (reason not_running) until you resume; no new exposures are recorded. Shoppers keep their variant for when it resumes, and the analysis window stays open."},
	{Name: "resume", Label: "Resume", Explain: "Assignment starts again with the same variants and seed: every shopper gets the variant they had before the pause."},
	{Name: "stop", Label: "Stop", Danger: true, Explain: "The experiment ends for good: shoppers get the control's experience, the phase's analysis window closes now, and it cannot be started again. Its results stay readable."},
	{Name: "delete", Label: "Delete draft", Danger: true, Explain: "The draft is removed; its history stays. Only drafts can be deleted."},
}

// actionsFor lists the lifecycle actions a status allows.
func actionsFor(st experiments.Status) []actionInfo {
	var out []actionInfo
	for _, a := range actionList {
		if a.Name == "delete" {
			if st == experiments.StatusDraft {
				out = append(out, a)
			}
			continue
		}
		if _, ok := st.Next(experiments.Action(a.Name)); ok {
			out = append(out, a)
		}
	}
	return out
}

func findAction(name string) (actionInfo, bool) {
	for _, a := range actionList {
		if a.Name == name {
			return a, true
		}
	}
	return actionInfo{}, false
}

// confirmView is the data of a confirmation page.
type confirmView struct {
	*experiments.Experiment
	Action actionInfo
}

func (c *Console) confirmAction(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	a, ok := findAction(q.r.PathValue("action"))
	if !ok {
		return apperr.New(apperr.NotFound, "there is no action %q", q.r.PathValue("action"))
	}
	if !contains(actionsFor(e.Status), a) {
		return apperr.New(apperr.InvalidTransition, "experiment %q is %s: it cannot %s", e.Key, e.Status, a.Name)
	}
	c.renderView(q, http.StatusOK, "confirm", view{Title: a.Label + " " + e.Key, Nav: "experiments", Data: confirmView{Experiment: e, Action: a}})
	return nil
}

func (c *Console) doAction(q *request) error {
	key := q.r.PathValue("key")
	name := q.r.PathValue("action")
	version, err := strconv.Atoi(q.r.PostFormValue("version"))
	if err != nil {
		return apperr.New(apperr.Invalid, "the form lacks the experiment's version: reload the page and try again")
	}
	switch name {
	case "delete":
		err = c.deps.Experiments.Delete(q.ctx(), q.actor(), key, &version)
		if err == nil {
			c.reloadAssignments(q)
			return q.redirect(Base + "experiments?done=deleted")
		}
	case "start", "pause", "resume", "stop":
		_, err = c.deps.Experiments.Transition(q.ctx(), q.actor(), key, experiments.Action(name), &version)
	default:
		return apperr.New(apperr.NotFound, "there is no action %q", name)
	}
	if apperr.CodeOf(err) == apperr.VersionConflict {
		return apperr.New(apperr.VersionConflict, "someone changed experiment %q after you opened the page, so nothing was done: look at it again and decide", key)
	}
	if err != nil {
		return err
	}
	c.reloadAssignments(q)
	return q.redirect(Base + "experiments/" + url.PathEscape(key) + "?done=" + name)
}

func (c *Console) phaseForm(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	if e.Status != experiments.StatusRunning && e.Status != experiments.StatusPaused {
		return apperr.New(apperr.InvalidTransition, "a new phase needs a running or paused experiment; %q is %s", e.Key, e.Status)
	}
	v := formView{Form: formOf(e.Definition), Experiment: e, Version: e.Version, Phase: true,
		Action: Base + "experiments/" + url.PathEscape(e.Key) + "/phase"}
	c.renderView(q, http.StatusOK, "form", view{Title: "New phase of " + e.Key, Nav: "experiments", Data: v})
	return nil
}

func (c *Console) newPhase(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	f := parseForm(q.r.PostForm)
	version, _ := strconv.Atoi(q.r.PostFormValue("version"))
	v := formView{Form: f, Experiment: e, Version: version, Phase: true,
		Action: Base + "experiments/" + url.PathEscape(e.Key) + "/phase"}
	title := "New phase of " + e.Key
	if f.apply(q.r.PostFormValue("op")) {
		c.renderView(q, http.StatusOK, "form", view{Title: title, Nav: "experiments", Data: v})
		return nil
	}
	form := f.definition()
	def := e.Definition
	def.Variants, def.Coverage = form.Variants, form.Coverage
	if !f.validate(def) {
		c.renderView(q, http.StatusBadRequest, "form", view{Title: title, Nav: "experiments", Data: v})
		return nil
	}
	_, err = c.deps.Experiments.NewPhase(q.ctx(), q.actor(), e.Key, experiments.PhaseChange{Variants: form.Variants, Coverage: form.Coverage}, &version)
	return c.saved(q, &v, title, "phase", version, err)
}

// historyView is the data of the history page.
type historyView struct {
	Key     string
	Entries []historyEntry
}

// historyEntry is one audit entry with its changes as readable lines.
type historyEntry struct {
	experiments.AuditEntry
	Changes []change
}

func (c *Console) history(q *request) error {
	key := q.r.PathValue("key")
	hist, err := c.deps.Experiments.History(q.ctx(), key)
	if err != nil {
		return err
	}
	v := historyView{Key: key}
	// Newest first, as people read a log.
	for i := len(hist) - 1; i >= 0; i-- {
		v.Entries = append(v.Entries, historyEntry{AuditEntry: hist[i], Changes: describeChanges(hist[i])})
	}
	c.renderView(q, http.StatusOK, "history", view{Title: "History of " + key, Nav: "experiments", Data: v})
	return nil
}
