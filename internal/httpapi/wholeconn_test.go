package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// wholeServer serves answers of the size a request's ?n= asks for, announced whole unless
// ?plain is set, with newHTTPServer and the listener and ConnContext that Serve installs; it
// keeps every connection so that tests can count the writes made on them.
type wholeServer struct {
	addr  string
	mu    sync.Mutex
	conns []*wholeConn
}

func startWholeServer(t testing.TB) *wholeServer {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ws := &wholeServer{addr: tcp.Addr().String()}
	srv := newHTTPServer(http.HandlerFunc(answerOfSize), DefaultServeConfig)
	srv.ConnContext = withWholeConn
	go func() { _ = srv.Serve(recordingListener{wholeListener{tcp}, ws}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ws
}

// answerOfSize writes n bytes of a repeating pattern, as writeJSON writes an answer.
func answerOfSize(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	w.Header().Set("Content-Length", strconv.Itoa(n))
	if r.URL.Query().Get("plain") == "" {
		announceWhole(r)
	}
	_, _ = w.Write(pattern(n))
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

type recordingListener struct {
	net.Listener
	ws *wholeServer
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if wc, ok := c.(*wholeConn); ok {
		l.ws.mu.Lock()
		l.ws.conns = append(l.ws.conns, wc)
		l.ws.mu.Unlock()
	}
	return c, err
}

// writes is the number of writes made on all connections so far.
func (ws *wholeServer) writes() int64 {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var n int64
	for _, c := range ws.conns {
		n += c.writes.Load()
	}
	return n
}

// client is one kept-alive connection to the server; an answer that never comes fails the
// test at the deadline instead of hanging it.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return &client{conn: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (c *client) send(t testing.TB, method, query string) {
	t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s /?%s HTTP/1.1\r\nHost: x\r\n\r\n", method, query); err != nil {
		t.Fatal(err)
	}
}

// read reads one answer as it came on the wire and returns its header's length and its body.
func (c *client) read(t testing.TB, method string) (int, []byte) {
	t.Helper()
	headLen, length := 0, 0
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			t.Fatalf("reading the answer's header: %v", err)
		}
		headLen += len(line)
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
		if string(line) == "\r\n" {
			break
		}
	}
	if method == "HEAD" {
		return headLen, nil
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(c.r, body); err != nil {
		t.Fatalf("reading a body of %d bytes: %v", length, err)
	}
	return headLen, body
}

// TestAnAnnouncedAnswerLeavesInOneWrite is what wholeConn is for: whatever an answer's length
// around net/http's 4,096-byte buffer, it arrives whole and intact, and the server writes it
// once; unannounced, the same answer takes two writes.
func TestAnAnnouncedAnswerLeavesInOneWrite(t *testing.T) {
	ws := startWholeServer(t)
	c := dial(t, ws.addr)
	c.send(t, "GET", "n=3000")
	headLen, _ := c.read(t, "GET") // the header of a four-digit answer
	for _, tc := range []struct {
		name   string
		n      int
		plain  bool
		writes int64
	}{
		{"small", 100, false, 1},
		{"fills the buffer exactly", 4096 - headLen, false, 1},
		{"one byte over the buffer", 4096 - headLen + 1, false, 1},
		{"a thousand bytes over", 5000, false, 1},
		{"four buffers", 16000, false, 1},
		{"larger than what is held", 100000, false, 1},
		{"one byte over, unannounced", 4096 - headLen + 1, true, 2},
		{"a thousand bytes over, unannounced", 5000, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "n=" + strconv.Itoa(tc.n)
			if tc.plain {
				q += "&plain=1"
			}
			before := ws.writes()
			c.send(t, "GET", q)
			_, body := c.read(t, "GET")
			if !bytes.Equal(body, pattern(tc.n)) {
				t.Fatalf("body of %d bytes, want %d of the pattern", len(body), tc.n)
			}
			if got := ws.writes() - before; got != tc.writes {
				t.Errorf("%d writes for the answer, want %d", got, tc.writes)
			}
		})
	}
}

// TestPipelinedAnswersEachArriveWhole sends several requests before reading any answer: what
// one answer held back never spills into the next or waits for it.
func TestPipelinedAnswersEachArriveWhole(t *testing.T) {
	ws := startWholeServer(t)
	c := dial(t, ws.addr)
	sizes := []int{5000, 10, 4500, 70000, 4200}
	for _, n := range sizes {
		c.send(t, "GET", "n="+strconv.Itoa(n))
	}
	for _, n := range sizes {
		if _, body := c.read(t, "GET"); !bytes.Equal(body, pattern(n)) {
			t.Fatalf("an answer of %d bytes, want %d of the pattern", len(body), n)
		}
	}
}

// TestAHeadAnswerIsNotHeld: a HEAD answer states a Content-Length but carries no body, so
// holding its header back for a body would hang the client.
func TestAHeadAnswerIsNotHeld(t *testing.T) {
	ws := startWholeServer(t)
	c := dial(t, ws.addr)
	c.send(t, "HEAD", "n=5000")
	if _, body := c.read(t, "HEAD"); len(body) != 0 {
		t.Fatalf("a HEAD answer with a body of %d bytes", len(body))
	}
	c.send(t, "GET", "n=5000") // the connection still answers
	if _, body := c.read(t, "GET"); len(body) != 5000 {
		t.Fatalf("a body of %d bytes after HEAD, want 5000", len(body))
	}
}

// TestOnlyAnAnswerThatContinuesIsHeld checks the reading of the bytes net/http writes.
func TestOnlyAnAnswerThatContinuesIsHeld(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12345", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n1234567", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX: y", false},              // header incomplete
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n", false}, // no length
		{"HTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\n12345", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n1", false},
		{"HTTP/1.1 200 OK\r\nX-Content-Length: 10\r\n\r\n12345", false},
		{"\x17\x03\x03\x00\x10HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n1", false}, // not an answer's start
	} {
		if got := answerContinues([]byte(tc.p)); got != tc.want {
			t.Errorf("answerContinues(%q) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

// TestServeSendsTheAssignAnswerWhole runs Serve itself: an answer longer than the buffer
// arrives intact over its connections.
func TestServeSendsTheAssignAnswerWhole(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, http.HandlerFunc(answerOfSize), ServeConfig{}) }()
	c := dial(t, l.Addr().String())
	for _, n := range []int{4000, 4100, 9000} {
		c.send(t, "GET", "n="+strconv.Itoa(n))
		if _, body := c.read(t, "GET"); !bytes.Equal(body, pattern(n)) {
			t.Fatalf("an answer of %d bytes, want %d of the pattern", len(body), n)
		}
	}
	_ = c.conn.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
