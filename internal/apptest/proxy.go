package apptest

import (
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a database, and can be stopped and started again: stopped,
// it refuses connections and has cut the open ones, as a database that went down would.
type Proxy struct {
	URL string // the database's URL with the proxy's address in it

	network, target, addr string
	t                     testing.TB

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to the database at dbURL (a postgres:// URL on TCP or, with a host
// query parameter, a unix socket); it stops when the test ends.
func NewProxy(t testing.TB, dbURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{network: "tcp", target: u.Host, t: t, conns: map[net.Conn]struct{}{}}
	q := u.Query()
	if dir := q.Get("host"); filepath.IsAbs(dir) {
		port := q.Get("port")
		if port == "" {
			port = u.Port()
		}
		if port == "" {
			port = "5432"
		}
		p.network, p.target = "unix", filepath.Join(dir, ".s.PGSQL."+port)
		q.Del("host")
		q.Del("port")
	}
	p.listen("127.0.0.1:0")
	u.Host, u.RawQuery = p.addr, q.Encode()
	p.URL = u.String()
	t.Cleanup(p.Stop)
	return p
}

func (p *Proxy) listen(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.l, p.addr = l, l.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.forward(l, c)
		}
	})
}

// forward joins the client connection c, accepted on l, to a new connection to the database,
// unless the proxy stopped meanwhile.
func (p *Proxy) forward(l net.Listener, c net.Conn) {
	d, err := net.Dial(p.network, p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != l { // stopped while dialling: Stop did not see these connections
		c.Close()
		d.Close()
		return
	}
	p.conns[c], p.conns[d] = struct{}{}, struct{}{}
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}
	p.wg.Go(func() { pipe(d, c) })
	p.wg.Go(func() { pipe(c, d) })
}

// Stop refuses new connections and cuts the open ones; it returns once the proxy's
// goroutines have ended.
func (p *Proxy) Stop() {
	p.mu.Lock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Start accepts connections again, on the same address.
func (p *Proxy) Start() {
	p.listen(p.addr)
}
