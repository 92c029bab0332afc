package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/report"
	"github.com/xsell/xsell/internal/results"
)

// resultsView is the data of the results page.
type resultsView struct {
	*experiments.Experiment
	Snapshot *results.Snapshot
	Latest   bool
	Older    []results.Info
	Pending  *time.Time
	Body     template.HTML
	Refresh  time.Duration
}

// snapshotsListed is how many older snapshots the page links to.
const snapshotsListed = 48

func (c *Console) resultsPage(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	store := c.deps.Results.Store()
	v := resultsView{Experiment: e, Latest: true, Refresh: c.deps.Results.Every()}
	if id := q.r.URL.Query().Get("snapshot"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return apperr.New(apperr.NotFound, "no results snapshot %q", id)
		}
		v.Snapshot, v.Latest = nil, false
		if v.Snapshot, err = store.Get(q.ctx(), e.Key, n); err != nil {
			return err
		}
	} else if v.Snapshot, err = store.Latest(q.ctx(), e.Key); err != nil {
		return err
	}
	if v.Older, err = store.List(q.ctx(), e.Key, snapshotsListed); err != nil {
		return err
	}
	if v.Pending, err = store.Pending(q.ctx(), e.Key); err != nil {
		return err
	}
	if v.Snapshot != nil && v.Snapshot.Report != nil {
		if v.Body, err = report.Body(v.Snapshot.Report); err != nil {
			return errors.Join(errors.New("rendering the report"), err)
		}
	}
	vw := view{Title: "Results of " + e.Key, Nav: "experiments", Data: v}
	if v.Latest && (v.Pending != nil || (v.Snapshot == nil && e.Status.Started())) {
		// Reload until the snapshot the page waits for is there; no script needed.
		vw.Refresh = 3
	}
	c.renderView(q, http.StatusOK, "results", vw)
	return nil
}

func (c *Console) refreshResults(q *request) error {
	e, err := c.experiment(q)
	if err != nil {
		return err
	}
	if !e.Status.Started() {
		return apperr.New(apperr.InvalidTransition, "experiment %q is a draft: it has no results until it starts", e.Key)
	}
	if err := c.deps.Results.Refresh(q.ctx(), e.Key, q.sess.KeyName); err != nil {
		return err
	}
	return q.redirect(Base + "experiments/" + url.PathEscape(e.Key) + "/results?done=refresh")
}
