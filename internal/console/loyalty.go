package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/loyalty"
)

func (c *Console) loyaltyRoutes() {
	b := Base + "loyalty"
	c.handle("GET "+b, reader, c.loyaltyPage)
	c.handle("POST "+b+"/program", admin, c.saveProgram)
	c.handle("GET "+b+"/accounts", reader, c.account)
	c.handle("GET "+b+"/transactions/{id}/reverse", admin, c.confirmReverse)
	c.handle("POST "+b+"/transactions/{id}/reverse", admin, c.reverse)
}

// programView is the data of the loyalty page: the settings form and the account lookup.
type programView struct {
	Program loyalty.Program
	// Fields are the settings as typed, with their problems, when a save was refused.
	Fields   map[string]string
	Problems map[string]string
}

// Value is a setting as typed, or as stored.
func (v programView) Value(field string) string {
	if s, ok := v.Fields[field]; ok {
		return s
	}
	switch field {
	case "earn_rate":
		return strconv.Itoa(v.Program.EarnRate)
	case "point_value":
		return strconv.Itoa(v.Program.PointValue)
	case "expiry_days":
		return strconv.Itoa(v.Program.ExpiryDays)
	case "pending_days":
		return strconv.Itoa(v.Program.PendingDays)
	}
	return ""
}

// Err returns the problem of one setting, for the "fielderror" template.
func (v programView) Err(field string) *fieldErr {
	if m, ok := v.Problems[field]; ok {
		return &fieldErr{ID: fieldID(field), Messages: []string{m}}
	}
	return nil
}

var programFields = []string{"earn_rate", "point_value", "expiry_days", "pending_days"}

func (c *Console) loyaltyPage(q *request) error {
	p, err := c.deps.Loyalty.Program(q.ctx())
	if err != nil {
		return err
	}
	c.renderView(q, http.StatusOK, "loyalty", view{Title: "Loyalty", Nav: "loyalty", Data: programView{Program: p}})
	return nil
}

func (c *Console) saveProgram(q *request) error {
	v := programView{Fields: map[string]string{}, Problems: map[string]string{}}
	vals := map[string]int{}
	for _, f := range programFields {
		s := q.r.PostFormValue(f)
		v.Fields[f] = s
		n, err := strconv.Atoi(s)
		if err != nil {
			v.Problems[f] = "must be a whole number"
		}
		vals[f] = n
	}
	if len(v.Problems) == 0 {
		p, err := c.deps.Loyalty.SetProgram(q.ctx(), loyalty.Program{EarnRate: vals["earn_rate"], PointValue: vals["point_value"],
			ExpiryDays: vals["expiry_days"], PendingDays: vals["pending_days"]})
		if err == nil {
			c.log.Info("console: loyalty program saved", "key", q.sess.KeyName, "program", p)
			return q.redirect(Base + "loyalty?done=program")
		}
		var e *apperr.Error
		if apperr.CodeOf(err) != apperr.Invalid || !asAppErr(err, &e) {
			return err
		}
		for _, d := range e.Details {
			v.Problems[d.Field] = d.Message
		}
	}
	p, err := c.deps.Loyalty.Program(q.ctx())
	if err != nil {
		return err
	}
	v.Program = p
	c.renderView(q, http.StatusBadRequest, "loyalty", view{Title: "Loyalty", Nav: "loyalty", Data: v})
	return nil
}

// accountView is the data of an account's page.
type accountView struct {
	Shopper      string
	Problem      string
	Account      *loyalty.Account
	Lots         []loyalty.Lot
	Transactions loyalty.Page
	Cursor       string
}

// NextPage is the query of the next (older) page of transactions.
func (v accountView) NextPage() string {
	return url.Values{"shopper": {v.Shopper}, "cursor": {v.Transactions.NextCursor}}.Encode()
}

func (c *Console) account(q *request) error {
	qs := q.r.URL.Query()
	v := accountView{Shopper: qs.Get("shopper"), Cursor: qs.Get("cursor")}
	if err := loyalty.CheckShopperID(v.Shopper); err != nil {
		v.Problem = "Enter a shopper id (1 to 256 characters)."
		c.renderView(q, http.StatusBadRequest, "account", view{Title: "Account lookup", Nav: "loyalty", Data: v})
		return nil
	}
	a, err := c.deps.Loyalty.Account(q.ctx(), v.Shopper)
	if err != nil {
		return err
	}
	v.Account = &a
	if v.Lots, err = c.deps.Loyalty.Lots(q.ctx(), v.Shopper); err != nil {
		return err
	}
	if v.Transactions, err = c.deps.Loyalty.Transactions(q.ctx(), v.Shopper, v.Cursor, 50); err != nil {
		return err
	}
	c.renderView(q, http.StatusOK, "account", view{Title: "Account of " + v.Shopper, Nav: "loyalty", Data: v})
	return nil
}

// reverseView is the data of a reversal's confirmation.
type reverseView struct {
	Tx             loyalty.Transaction
	IdempotencyKey string
	Points         string
	Problem        string
}

func (c *Console) transaction(q *request) (loyalty.Transaction, error) {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return loyalty.Transaction{}, apperr.New(apperr.NotFound, "no transaction %q", q.r.PathValue("id"))
	}
	return c.deps.Loyalty.Transaction(q.ctx(), id)
}

func (c *Console) confirmReverse(q *request) error {
	t, err := c.transaction(q)
	if err != nil {
		return err
	}
	if t.Type != loyalty.KindEarn && t.Type != loyalty.KindRedeem {
		return apperr.New(apperr.Conflict, "transaction %d is a%s %s: only earns and redemptions can be reversed", t.ID, an(t.Type), t.Type)
	}
	// The key makes the button safe to press twice: the second press replays the first.
	v := reverseView{Tx: t, IdempotencyKey: "console-reverse-" + randomToken()[:16]}
	c.renderView(q, http.StatusOK, "reverse", view{Title: "Reverse transaction", Nav: "loyalty", Data: v})
	return nil
}

func an(word string) string {
	if word != "" && (word[0] == 'e' || word[0] == 'a') {
		return "n"
	}
	return ""
}

func (c *Console) reverse(q *request) error {
	t, err := c.transaction(q)
	if err != nil {
		return err
	}
	v := reverseView{Tx: t, IdempotencyKey: q.r.PostFormValue("idempotency_key"), Points: q.r.PostFormValue("points")}
	req := loyalty.ReverseRequest{IdempotencyKey: v.IdempotencyKey}
	if v.Points != "" {
		n, err := strconv.ParseInt(v.Points, 10, 64)
		if err != nil {
			v.Problem = "must be a whole number of points, or empty to reverse all that is left"
			c.renderView(q, http.StatusBadRequest, "reverse", view{Title: "Reverse transaction", Nav: "loyalty", Data: v})
			return nil
		}
		req.Points = &n
	}
	_, err = c.deps.Loyalty.Reverse(q.ctx(), t.ID, req)
	if apperr.CodeOf(err) == apperr.Invalid {
		var e *apperr.Error
		asAppErr(err, &e)
		v.Problem = e.Message
		c.renderView(q, http.StatusBadRequest, "reverse", view{Title: "Reverse transaction", Nav: "loyalty", Data: v})
		return nil
	}
	if err != nil {
		return err
	}
	c.log.Info("console: loyalty transaction reversed", "key", q.sess.KeyName, "transaction", t.ID)
	return q.redirect(Base + "loyalty/accounts?" + url.Values{"shopper": {t.ShopperID}, "done": {"reversed"}}.Encode())
}
