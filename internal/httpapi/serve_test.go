package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/servertest"
)

// serving runs Serve on a fresh loopback listener until the test ends and returns its address.
func serving(t *testing.T, h http.Handler, cfg ServeConfig) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, h, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// TestSlowClientsAreCutOff: a client that trickles its headers or its body, a byte at a time,
// has its connection closed by the server at the read timeouts, long before it is done.
func TestSlowClientsAreCutOff(t *testing.T) {
	var bodiesRead atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err == nil {
			bodiesRead.Add(1)
		}
	})
	addr := serving(t, h, ServeConfig{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond})
	const trickled = 600 // bytes at one per 25 ms: 15 s for the client to finish
	for _, tc := range []struct{ name, head, drip string }{
		{"headers", "POST / HTTP/1.1\r\nHost: x\r\n", "X-Slow: y\r\n"},
		{"body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n\r\n", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.head); err != nil {
				t.Fatal(err)
			}
			var sent atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			defer func() { close(stop); wg.Wait() }()
			wg.Go(func() {
				tick := time.NewTicker(25 * time.Millisecond)
				defer tick.Stop()
				for sent.Load() < trickled {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := io.WriteString(conn, tc.drip[:1]); err != nil {
						return
					}
					sent.Add(1)
				}
			})
			// Wait for the server to close the connection: whatever it answers, the read then
			// ends. The deadline only bounds a failing test.
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the connection open while %d bytes trickled in", sent.Load())
			}
			if n := sent.Load(); n >= trickled {
				t.Fatalf("the client sent all %d bytes before the server closed the connection", n)
			}
		})
	}
	if n := bodiesRead.Load(); n != 0 {
		t.Fatalf("the handler read %d complete bodies, want none", n)
	}
}

// TestServeTLS: with a certificate and key, the API answers over HTTPS to a client that trusts
// the certificate, and plain HTTP gets no answer from the handler.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := servertest.SelfSigned(t, t.TempDir())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "over "+r.Proto+" tls="+map[bool]string{true: "yes", false: "no"}[r.TLS != nil])
	})
	addr := serving(t, h, ServeConfig{TLSCert: certFile, TLSKey: keyFile})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "tls=yes") {
		t.Fatalf("HTTPS: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + addr + "/")
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), "tls=") {
			t.Fatalf("plain HTTP reached the handler: %d %q", resp.StatusCode, body)
		}
	}
}

// closeSignal tells when Serve has closed its listener, the moment shutdown stops accepting.
type closeSignal struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeSignal) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// TestGracefulShutdownFinishesInFlight: when ctx ends, Serve stops accepting at once, lets the
// request in flight finish with its answer, then returns nil.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &closeSignal{Listener: inner, closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, h, ServeConfig{ShutdownGrace: 10 * time.Second}) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String() + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel() // as SIGTERM would
	// Shutdown closing the listener is the server ceasing to accept. Dialling the port to
	// check would race with any other listener that the kernel gives the freed port to.
	<-l.closed
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request still in flight", err)
	default:
	}
	close(release)
	if body := <-got; body != "finished" {
		t.Fatalf("in-flight request got %q, want finished", body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}
