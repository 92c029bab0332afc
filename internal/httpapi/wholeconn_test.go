package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wholeServer serves answers of the size a request's ?n= asks for, announced whole unless
// ?plain is set, with newHTTPServer and what Serve installs (serveWhole); it
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
	go func() { _ = srv.Serve(recordingListener{serveWhole(srv, tcp), ws}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ws
}

// answerOfSize reads the request's body, then writes n bytes of a repeating pattern, as
// writeJSON writes an answer. Its X-Whole-Conn header says whether the request came over a
// wholeConn.
func answerOfSize(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	if _, ok := r.Context().Value(wholeConnKey{}).(*wholeConn); ok {
		w.Header().Set("X-Whole-Conn", "yes")
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	if r.URL.Query().Get("plain") == "" {
		announceWhole(r)
	}
	short, _ := strconv.Atoi(r.URL.Query().Get("short")) // a handler that writes less than it said
	_, _ = w.Write(pattern(n - short))
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
	c.sendRaw(t, method+" /?"+query+" HTTP/1.1\r\nHost: x\r\n\r\n")
}

func (c *client) sendRaw(t testing.TB, raw string) {
	t.Helper()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		t.Fatal(err)
	}
}

// read reads one answer as it came on the wire and returns its header's length and its body.
func (c *client) read(t testing.TB, method string) (int, []byte) {
	t.Helper()
	head, body := c.readAnswer(t, method)
	return len(head), body
}

// readAnswer reads one answer as it came on the wire: its status line and header, and its body.
func (c *client) readAnswer(t testing.TB, method string) (string, []byte) {
	t.Helper()
	var head []byte
	length := 0
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			t.Fatalf("reading the answer's header: %v", err)
		}
		head = append(head, line...)
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
		if string(line) == "\r\n" {
			break
		}
	}
	if method == "HEAD" {
		return string(head), nil
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(c.r, body); err != nil {
		t.Fatalf("reading a body of %d bytes: %v", length, err)
	}
	return string(head), body
}

// readEOF fails unless the server has closed the connection after the last answer.
func (c *client) readEOF(t testing.TB) {
	t.Helper()
	if b, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after the last answer: byte %q, error %v; want the connection closed", b, err)
	}
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

// TestTheLastAnswerOfAConnectionArrivesBeforeItCloses: when the server closes the connection
// after an answer (the client asked to, or speaks HTTP/1.0), nothing held is left behind.
func TestTheLastAnswerOfAConnectionArrivesBeforeItCloses(t *testing.T) {
	for _, tc := range []struct{ name, raw string }{
		{"Connection: close", "GET /?n=5000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0", "GET /?n=5000 HTTP/1.0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := startWholeServer(t)
			c := dial(t, ws.addr)
			c.sendRaw(t, tc.raw)
			if _, body := c.read(t, "GET"); !bytes.Equal(body, pattern(5000)) {
				t.Fatalf("a body of %d bytes, want 5000 of the pattern", len(body))
			}
			c.readEOF(t)
			if got := ws.writes(); got != 1 {
				t.Errorf("%d writes, want 1", got)
			}
		})
	}
}

// TestAnAnswerCutShortStillArrives: a handler that writes less than its Content-Length gets
// its connection closed by net/http; what it wrote still reaches the client, even when it
// ended exactly where a held write would wait for more.
func TestAnAnswerCutShortStillArrives(t *testing.T) {
	ws := startWholeServer(t)
	c := dial(t, ws.addr)
	c.send(t, "GET", "n=3000")
	headLen, _ := c.read(t, "GET")
	written := 4096 - headLen // the header and this fill the buffer: one write, held
	c.send(t, "GET", "n="+strconv.Itoa(written+1000)+"&short=1000")
	head, err := c.r.ReadString('\n')
	if err != nil || head != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status line %q, %v", head, err)
	}
	rest, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(head) + len(rest); got != 4096 {
		t.Fatalf("%d bytes arrived before the connection closed, want 4096", got)
	}
	if !bytes.HasSuffix(rest, pattern(written)) {
		t.Fatalf("the answer does not end with the %d bytes written", written)
	}
}

// TestAContinueComesBeforeTheAnswerItAnnounces: a client that waits for "100 Continue" gets
// it on its own, then the whole answer.
func TestAContinueComesBeforeTheAnswerItAnnounces(t *testing.T) {
	ws := startWholeServer(t)
	c := dial(t, ws.addr)
	c.sendRaw(t, "POST /?n=6000 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if head, _ := c.readAnswer(t, "HEAD"); head != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("first answer %q, want 100 Continue", head)
	}
	c.sendRaw(t, "hello")
	if _, body := c.read(t, "POST"); !bytes.Equal(body, pattern(6000)) {
		t.Fatalf("a body of %d bytes, want 6000 of the pattern", len(body))
	}
}

// TestServeSendsTheAssignAnswerWhole runs Serve itself: its requests come over wholeConns,
// and an answer longer than the buffer arrives intact.
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
		head, body := c.readAnswer(t, "GET")
		if !strings.Contains(head, "\r\nX-Whole-Conn: yes\r\n") {
			t.Fatalf("the request did not come over a wholeConn: %q", head)
		}
		if !bytes.Equal(body, pattern(n)) {
			t.Fatalf("an answer of %d bytes, want %d of the pattern", len(body), n)
		}
	}
	_ = c.conn.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
