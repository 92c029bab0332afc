package httpapi

import (
	"net"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkAnswerOverLoopback is one kept-alive client asking for answers of 3,500 bytes
// (under net/http's 4,096-byte buffer with the headers) and 4,500 bytes (over it), served by
// plain net/http and by net/http over wholeConn: what the held write saves, and what it costs
// when there is nothing to save. Client and server share the process; run it with
// scripts/bench/cpu-per-op.sh to compare CPU per answer.
func BenchmarkAnswerOverLoopback(b *testing.B) {
	for _, n := range []int{3500, 4500} {
		for _, whole := range []bool{false, true} {
			name := "net-http/" + strconv.Itoa(n)
			if whole {
				name = "whole/" + strconv.Itoa(n)
			}
			b.Run(name, func(b *testing.B) {
				addr := startLoopbackServer(b, whole)
				c := dial(b, addr)
				q := "n=" + strconv.Itoa(n)
				for b.Loop() {
					c.send(b, "GET", q)
					if _, body := c.read(b, "GET"); len(body) != n {
						b.Fatalf("a body of %d bytes, want %d", len(body), n)
					}
				}
			})
		}
	}
}

// startLoopbackServer serves answerOfSize on a loopback port, over wholeConns if whole.
func startLoopbackServer(b *testing.B, whole bool) string {
	b.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(answerOfSize), DefaultServeConfig)
	var l net.Listener = tcp
	if whole {
		l = serveWhole(srv, tcp)
	}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return tcp.Addr().String()
}
