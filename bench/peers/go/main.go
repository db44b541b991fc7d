// Go net/http peer for hangup's benchmarks, with the routes of hangup's
// bench_server example:
//
//   - GET /plaintext (and GET /) -> 200 "Hello, World!" (text/plain)
//   - GET /bytes/N -> N bytes (N <= 64 MiB) with a Content-Length, written
//     with one Write from one preallocated buffer
//   - POST /echo -> the request body (read whole, at most 64 MiB, then
//     written back with a Content-Length: Go's HTTP/1 server does not let a
//     handler read the body after it started writing the response)
//
// Usage: GOMAXPROCS=1 go-bench [ADDR]   (default 127.0.0.1:3003)
//
// bench/run builds it with Debian's golang-go (`go build`, standard library
// only) and runs it with GOMAXPROCS=1, pinned to one core.
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
)

const maxBytes = 64 << 20

var (
	zeroesOnce sync.Once
	zeroesBuf  []byte
)

// zeroes returns the /bytes/N buffer, allocated on first use.
func zeroes() []byte {
	zeroesOnce.Do(func() {
		zeroesBuf = []byte(strings.Repeat("0", maxBytes))
	})
	return zeroesBuf
}

var hello = []byte("Hello, World!")

func handler(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && (path == "/plaintext" || path == "/"):
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"13"}
		w.Write(hello)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/bytes/"):
		n, err := strconv.Atoi(path[len("/bytes/"):])
		if err != nil || n < 0 || n > maxBytes {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "N must be a byte count up to 64 MiB\n")
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Content-Length"] = []string{strconv.Itoa(n)}
		w.Write(zeroes()[:n])
	case r.Method == http.MethodPost && path == "/echo":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
		if err != nil || len(body) > maxBytes {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "not found\n")
	}
}

func main() {
	addr := "127.0.0.1:3003"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	fmt.Fprintf(os.Stderr, "go-bench listening on %s (GOMAXPROCS=%s)\n", addr, os.Getenv("GOMAXPROCS"))
	// No timeouts, like the other peers (hangup's idle timeout is 60 s).
	server := &http.Server{Addr: addr, Handler: http.HandlerFunc(handler)}
	log.Fatal(server.ListenAndServe())
}
