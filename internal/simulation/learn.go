package simulation

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// History is what Learn sent and what the server learned from it.
type History struct {
	Shoppers int
	Orders   int64 // order_completed events sent
	Events   int64 // accepted by the server
	// Version and Learned are the complements snapshot built from the history: its version and
	// the orders it learned from (the history's and any the database held already).
	Version  int64
	Learned  int64
	Products int // products with at least one complement
}

// Learn gives the server a past to learn complements from, before an experiment whose
// strategies take their products from the complements model (source: complements): shoppers
// shoppers who are in no experiment shop over the scenario's days that end where Run's
// arrivals begin, their orders are reported, and the server is asked to build its model and
// waited on until it serves the new snapshot. Its shoppers' ids start with the prefix and
// "-past", so Run's never collide with them.
func Learn(ctx context.Context, sc *Scenario, cfg Config, shoppers int) (*History, error) {
	cfg.defaults()
	if shoppers < 1 {
		return nil, errors.New("learning complements needs at least one shopper")
	}
	c, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	past := *sc
	past.Shoppers = shoppers
	// Run's model ends an hour before now and spans the days: the past ends where it starts.
	now := cfg.Now().Add(-time.Duration(sc.Days) * 24 * time.Hour)
	m := newModel(&past, "", cfg.Prefix+"-past", nil, now)
	if len(m.pick) == 0 {
		return nil, errors.New("the catalog needs a product with a weight: shoppers come for something")
	}
	h := &History{Shoppers: shoppers}
	var evs []Event
	for i := range shoppers {
		e, _ := m.behave(m.shopper(i), Assignment{})
		for _, ev := range e {
			if ev.Type == orderCompleted {
				h.Orders++
			}
		}
		evs = append(evs, e...)
	}
	var sum Summary
	if err := sendAll(ctx, c, cfg, evs, &sum, &Progress{}); err != nil {
		return nil, err
	}
	h.Events = sum.Events

	// A build the server began before the last order was stored (its first, at start, may
	// still run) serves fewer orders than were sent: ask again until one has them all.
	before, err := c.admin.GetComplementsModel(ctx)
	if err != nil {
		return nil, err
	}
	var from int64
	if before.Serving != nil {
		from = before.Serving.Version
	}
	if _, err := c.admin.BuildComplements(ctx); err != nil {
		return nil, err
	}
	err = poll(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, error) {
		st, err := c.admin.GetComplementsModel(ctx)
		if err != nil || st.Serving == nil || st.Serving.Version <= from {
			return false, err
		}
		if st.Serving.Orders < h.Orders {
			from = st.Serving.Version
			_, err := c.admin.BuildComplements(ctx)
			return false, err
		}
		h.Version, h.Learned, h.Products = st.Serving.Version, st.Serving.Orders, st.Serving.Products
		return true, nil
	}, func() string {
		return fmt.Sprintf("the server serves no complements snapshot of at least %d orders newer than version %d", h.Orders, from)
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}
