package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// net/http writes a response through a 4,096-byte buffer per connection that cannot be
// configured: an answer whose headers and body pass it leaves in two write syscalls, the full
// buffer from the handler's Write and the rest when the request ends. Over a real connection
// each write also runs the receiver's side of TCP, and the assign answer passes 4 KB with a
// few learned strategies or many experiments (docs/benchmarks.md, issue 18's fifth and sixth
// rounds). wholeConn lets a handler say that its answer will be written whole: the
// connection then holds back a write that ends inside that answer and sends it with the next
// one in a single writev.

// wholeListener hands out wholeConns.
type wholeListener struct{ net.Listener }

// Accept wraps the accepted connection, unless it is TLS: net/http must see a *tls.Conn to
// fill in r.TLS, and a TLS connection's writes are records, not answers.
func (l wholeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, ok := c.(*tls.Conn); ok {
		return c, nil
	}
	return &wholeConn{Conn: c}, nil
}

// maxHeld bounds the bytes a connection holds back; net/http's buffer flushes 4,096.
const maxHeld = 16 << 10

// heldBuffers keeps the held bytes' buffers between answers, so that an idle connection
// holds none.
var heldBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// wholeConn is a server connection that can send the start of an answer together with its
// end. Only the connection's serving goroutine calls Write and announce (net/http writes a
// response from the goroutine that runs its handler); Close may come from another one
// (Server.Close), hence the lock around what is held.
type wholeConn struct {
	net.Conn
	mu        sync.Mutex   // held, pair, vec; Write holds it, Close only tries it
	announced bool         // the next Write starts an answer that is written whole
	held      *[]byte      // the start of that answer, waiting for the rest of it
	pair      [2][]byte    // held and the rest, for one writev
	vec       net.Buffers  // over pair; WriteTo consumes the slice, not the array
	writes    atomic.Int64 // writes made on the connection underneath (tests count them)
}

// Write sends p, or holds it back when it is the start of an announced answer whose
// Content-Length says more bytes follow; the next Write then sends both at once.
func (c *wholeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil {
		return c.writeWithHeld(p)
	}
	if c.announced {
		c.announced = false
		if len(p) <= maxHeld && answerContinues(p) {
			h := heldBuffers.Get().(*[]byte)
			*h = append((*h)[:0], p...)
			c.held = h
			return len(p), nil
		}
	}
	c.writes.Add(1) // before the write: its reader may look as soon as the bytes arrive
	return c.Conn.Write(p)
}

// writeWithHeld sends the held bytes and p with one writev. The held bytes were reported
// written when they were taken, so only p's count is returned.
func (c *wholeConn) writeWithHeld(p []byte) (int, error) {
	h := c.held
	c.held = nil
	c.pair = [2][]byte{*h, p}
	c.vec = c.pair[:] // a field, not a local, which WriteTo's pointer would move to the heap
	c.writes.Add(1)
	n, err := c.vec.WriteTo(c.Conn)
	c.pair, c.vec = [2][]byte{}, nil
	n -= int64(len(*h))
	heldBuffers.Put(h)
	if n < 0 {
		n = 0
	}
	return int(n), err
}

// closeWriter is what net/http looks for to half-close a connection it is done with.
type closeWriter interface{ CloseWrite() error }

// Close sends what is held, then closes the connection. Bytes are held at close only when a
// handler wrote less than its Content-Length said and net/http closes the connection on it:
// the client then sees the answer cut, not missing. A Close that comes while a Write is under
// way (Server.Close from another goroutine) closes at once and so ends that Write.
func (c *wholeConn) Close() error {
	if c.mu.TryLock() {
		if c.held != nil {
			_, _ = c.writeWithHeld(nil)
		}
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection underneath, as net/http does with a bare
// *net.TCPConn before closing it, once what is held has gone.
func (c *wholeConn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil {
		if _, err := c.writeWithHeld(nil); err != nil {
			return err
		}
	}
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom sends what is held, then copies r with the connection's own ReadFrom (sendfile or
// splice for a file), which net/http uses when a handler copies a file into its answer.
func (c *wholeConn) ReadFrom(r io.Reader) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil {
		if _, err := c.writeWithHeld(nil); err != nil {
			return 0, err
		}
	}
	return io.Copy(c.Conn, r)
}

// answerContinues reports whether p is the start of an HTTP/1.x response whose header is
// complete and whose Content-Length promises more bytes than p holds. A response without
// Content-Length (chunked) never qualifies.
func answerContinues(p []byte) bool {
	if !bytes.HasPrefix(p, []byte("HTTP/1.")) {
		return false
	}
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return false
	}
	const field = "\r\nContent-Length: "
	i := bytes.Index(p[:end+2], []byte(field))
	if i < 0 {
		return false
	}
	n, ok := parseLength(p[i+len(field) : end+2])
	return ok && end+4+n > len(p)
}

// parseLength reads the decimal number at the start of b, which must end with "\r\n".
func parseLength(b []byte) (int, bool) {
	n, digits := 0, 0
	for ; digits < len(b) && b[digits] >= '0' && b[digits] <= '9'; digits++ {
		if digits == 12 {
			return 0, false
		}
		n = n*10 + int(b[digits]-'0')
	}
	return n, digits > 0 && bytes.HasPrefix(b[digits:], []byte("\r\n"))
}

// serveWhole makes srv's requests come over wholeConns accepted from l: the listener to serve
// and the ConnContext that lets announceWhole find a request's connection.
func serveWhole(srv *http.Server, l net.Listener) net.Listener {
	srv.ConnContext = withWholeConn
	return wholeListener{l}
}

// wholeConnKey finds a request's wholeConn in its context.
type wholeConnKey struct{}

// withWholeConn puts the connection in the context of its requests (http.Server.ConnContext).
func withWholeConn(ctx context.Context, c net.Conn) context.Context {
	if wc, ok := c.(*wholeConn); ok {
		return context.WithValue(ctx, wholeConnKey{}, wc)
	}
	return ctx
}

// announceWhole tells r's connection that the handler's next Write is its last and carries
// exactly the body its Content-Length states; call it right before that Write. A HEAD answer
// carries no body, so it is never announced; a request served without a wholeConn (TLS,
// tests) is not affected.
func announceWhole(r *http.Request) {
	if r.Method == http.MethodHead {
		return
	}
	if wc, ok := r.Context().Value(wholeConnKey{}).(*wholeConn); ok {
		wc.announced = true
	}
}
