package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ServeConfig bounds what one connection may hold: a client that trickles its headers or body,
// or never reads the answer, is cut off rather than kept.
type ServeConfig struct {
	ReadHeaderTimeout time.Duration // from accept to the end of the headers
	ReadTimeout       time.Duration // from accept to the end of the body
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer
	IdleTimeout       time.Duration // a kept-alive connection between requests
	ShutdownGrace     time.Duration // in-flight requests may finish this long after ctx ends
	// TLSCert and TLSKey are PEM files; both set, Serve speaks HTTPS only.
	TLSCert, TLSKey string
}

// DefaultServeConfig is what the server uses unless told otherwise.
var DefaultServeConfig = ServeConfig{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       120 * time.Second,
	ShutdownGrace:     30 * time.Second,
}

// maxHeaderBytes bounds a request's headers; the API's are a few hundred bytes.
const maxHeaderBytes = 64 << 10

// Serve answers on l until ctx ends, then stops accepting, lets in-flight requests finish
// (up to cfg.ShutdownGrace) and returns. Zero durations take DefaultServeConfig's.
func Serve(ctx context.Context, l net.Listener, h http.Handler, cfg ServeConfig) error {
	cfg = cfg.withDefaults()
	srv := newHTTPServer(h, cfg)
	if cfg.TLSCert == "" {
		// Over TLS the connection sees records, not answers: nothing to hold there.
		l = serveWhole(srv, l)
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(l, cfg.TLSCert, cfg.TLSKey)
			return
		}
		errc <- srv.Serve(l)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("draining in-flight requests: %w", err)
	}
	return nil
}

// newHTTPServer is the http.Server that Serve runs h with.
func newHTTPServer(h http.Handler, cfg ServeConfig) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

func (c ServeConfig) withDefaults() ServeConfig {
	d := DefaultServeConfig
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.ReadHeaderTimeout, &d.ReadHeaderTimeout}, {&c.ReadTimeout, &d.ReadTimeout},
		{&c.WriteTimeout, &d.WriteTimeout}, {&c.IdleTimeout, &d.IdleTimeout},
		{&c.ShutdownGrace, &d.ShutdownGrace},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return c
}
