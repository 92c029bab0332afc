package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/xsell/xsell/client"
)

// recorder is a test server that answers from a script and records when each request came.
type recorder struct {
	mu      sync.Mutex
	at      []time.Time
	bodies  []string
	answers []func(w http.ResponseWriter)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.at)
	r.at = append(r.at, time.Now())
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
	if n < len(r.answers) {
		r.answers[n](w)
		return
	}
	w.WriteHeader(http.StatusTeapot)
}

func (r *recorder) requests() ([]time.Time, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.at...), append([]string(nil), r.bodies...)
}

func answerJSON(status int, body string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, "key", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRetryAfterIsHonoured checks that a 503 with Retry-After: 1 is retried no sooner than a
// second later, from the times the server saw the two requests, though the client's own
// backoff would have come back after a few milliseconds.
func TestRetryAfterIsHonoured(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		rec := &recorder{answers: []func(http.ResponseWriter){
			answerJSON(status, `{"error":{"code":"unavailable","message":"the database is down","request_id":"r1"}}`, "Retry-After", "1"),
			answerJSON(http.StatusOK, `{"accepted":1,"duplicates":0}`),
		}}
		ts := httptest.NewServer(rec)
		c := newClient(t, ts.URL, client.WithRetry(client.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}))
		res, err := c.SendEvents(context.Background(), []client.Event{{Type: client.EventOfferViewed, ShopperID: "s-1"}})
		ts.Close()
		if err != nil || res.Accepted != 1 {
			t.Fatalf("%d then 200: %+v, %v", status, res, err)
		}
		at, bodies := rec.requests()
		if len(at) != 2 {
			t.Fatalf("%d then 200: the server saw %d requests, want 2", status, len(at))
		}
		if gap := at[1].Sub(at[0]); gap < time.Second {
			t.Errorf("%d with Retry-After: 1: retried after %s", status, gap)
		}
		if bodies[0] != bodies[1] {
			t.Errorf("the retry sent another body:\n%s\n%s", bodies[0], bodies[1])
		}
	}
}

// TestWhatIsNotRetried checks that answers about the request itself are returned at once, as
// typed errors, and that an experiment write is not repeated after a dropped connection.
func TestWhatIsNotRetried(t *testing.T) {
	rec := &recorder{answers: []func(http.ResponseWriter){
		answerJSON(http.StatusBadRequest, `{"error":{"code":"invalid_request","message":"shopper_id: is required","details":[{"field":"shopper_id","code":"required","message":"is required"}],"request_id":"r-400"}}`),
		answerJSON(http.StatusInternalServerError, `{"error":{"code":"internal","message":"internal error","request_id":"r-500"}}`),
	}}
	ts := httptest.NewServer(rec)
	defer ts.Close()
	c := newClient(t, ts.URL)
	_, err := c.Assign(context.Background(), client.AssignRequest{})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != client.CodeInvalidRequest || e.RequestID != "r-400" ||
		len(e.Details) != 1 || e.Details[0].Field != "shopper_id" {
		t.Fatalf("400: got %#v", err)
	}
	// The other errors.As idiom: a *client.Error as the target.
	if target := (&client.Error{}); !errors.As(err, target) || target.Code != client.CodeInvalidRequest || target.Status != 400 {
		t.Fatalf("errors.As(err, &client.Error{}) = %+v", target)
	}
	if _, err := c.GetAccount(context.Background(), "s-1"); !client.IsCode(err, client.CodeInternal) {
		t.Fatalf("500: got %v", err)
	}
	if at, _ := rec.requests(); len(at) != 2 {
		t.Fatalf("the server saw %d requests, want 2: a 400 and a 500 are not retried", len(at))
	}

	// A server that drops every connection after reading the request.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	conns := 0
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			mu.Unlock()
			buf := make([]byte, 4096)
			_, _ = conn.Read(buf)
			conn.Close()
		}
	}()
	c = newClient(t, "http://"+l.Addr().String(), client.WithRetry(client.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	count := func() int { mu.Lock(); defer mu.Unlock(); return conns }
	_, err = c.CreateExperiment(context.Background(), client.Definition{Key: "x", Name: "x"})
	var te *client.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("create on a dropped connection: %v, want a *client.TransportError", err)
	}
	// The server counts a connection before it closes it, so before the client's error.
	if n := count(); n != 1 {
		t.Fatalf("the create came on %d connections: a write that may have happened is not retried", n)
	}
	_, err = c.GetExperiment(context.Background(), "x")
	if !errors.As(err, &te) {
		t.Fatalf("get on a dropped connection: %v, want a *client.TransportError", err)
	}
	if n := count() - 1; n < 3 {
		t.Fatalf("the get came on %d connections, want the client's 3 attempts", n)
	}
}

// TestContextEndsTheWait checks that a call waiting to retry gives up when its context ends,
// rather than sleeping out a long Retry-After.
func TestContextEndsTheWait(t *testing.T) {
	rec := &recorder{answers: []func(http.ResponseWriter){
		answerJSON(http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"down","request_id":"r"}}`, "Retry-After", "3600"),
	}}
	ts := httptest.NewServer(rec)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := newClient(t, ts.URL, client.WithRetryHook(func(e client.RetryEvent) {
		if e.Wait < time.Hour {
			t.Errorf("waiting %s, the server said an hour", e.Wait)
		}
		cancel()
	}))
	if _, err := c.GetAccount(ctx, "s-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the context's cancellation", err)
	}
}
