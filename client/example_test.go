package client_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"time"

	"github.com/xsell/xsell/client"
)

// A checkout decides the offer early without recording it, records the exposure when the
// offer is about to be seen, reports the order and redeems points with a key derived from the
// order. (Compiled, not run: it needs a server.)
func Example() {
	ctx := context.Background()
	xs, err := client.New("http://127.0.0.1:8080", "dev-checkout",
		client.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	req := client.AssignRequest{ShopperID: "s-3", Attributes: map[string]any{"country": "IT"},
		Experiments: []string{"pdp-bundle"}, Track: client.Bool(false)}
	if _, err := xs.Assign(ctx, req); err != nil {
		log.Print(err) // show the control's experience
	}
	req.Track = nil // the cart with the offer renders now: record the exposure
	ans, err := xs.Assign(ctx, req)
	if err == nil {
		if a, ok := ans.For("pdp-bundle"); ok && a.ShowsOffer() {
			log.Printf("show %s of %v at %s", a.Strategy.Type, a.Strategy.Products, a.Strategy.Timing)
		}
	}

	if _, err := xs.SendEvents(ctx, []client.Event{{
		ID: "order-o-1001-completed", Type: client.EventOrderCompleted, ShopperID: "s-3", Experiment: "pdp-bundle",
		OrderID: "o-1001", Amount: client.Int64(2400), Discount: client.Int64(150), Currency: "EUR",
		Items: []client.Item{{SKU: "sku-conditioner", Quantity: 1, UnitPrice: 1500}, {SKU: "sku-shampoo", Quantity: 1, UnitPrice: 900}},
	}}); err != nil {
		log.Print(err) // not committed: send the same events again later
	}

	_, err = xs.Redeem(ctx, "s-3", client.RedeemRequest{Points: 20, OrderID: "o-1002", IdempotencyKey: "o-1002-points"})
	var e *client.Error
	switch {
	case client.IsCode(err, client.CodeInsufficientPoints):
		log.Print("not enough points")
	case errors.As(err, &e):
		log.Printf("redeem refused: %s (request %s)", e.Code, e.RequestID)
	}
}
