// The question's server, for bench/go-puzzle/run: a Go net/http handler that
// waits until its client has left, then writes N bytes and reports what its
// Write calls returned. Standard library only; Debian's golang-go (1.19).
//
//	GET /?id=ID&n=N[&piece=P][&cl=1][&stay=1]
//
// prints "start ID" on stdout when the handler begins, then waits (not
// with stay=1, for a client that reads the whole response): by
// default until the request's context is cancelled (net/http's background
// read saw the client's FIN or RST), or with -sleep D for D, as the
// question's handler does (time.Sleep, then Write). Then it writes N bytes
// of 'x' (one Write, or Writes of P bytes with piece=P; with cl=1 it first
// sets Content-Length: N) and stops at the first error, as the question's
// handler would. Last it prints one JSON line:
//
//	{"id":ID,"n":N,"piece":P,"cl":false,"writes":W,"failed_write":K,"failed_at":B,"error":"...","ctx_done":true}
//
// failed_write is 0 when every Write succeeded. What net/http does after the
// handler returns (its final flush) is not visible to a handler, and not
// reported: that is the question.
//
// Usage: go-puzzle [-addr 127.0.0.1:0] [-sleep 0] [-max-wait 5s]
// The first line on stdout is "listening ADDR". Only loopback addresses are
// accepted.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// maxBytes bounds one response (the sweeps stay far below it).
const maxBytes = 1 << 20

var (
	stdoutMu sync.Mutex
	sleep    = flag.Duration("sleep", 0, "sleep this long instead of waiting for the client to leave (the question's handler)")
	maxWait  = flag.Duration("max-wait", 5*time.Second, "longest wait for the client to leave")
)

// say prints one line on stdout, whole, for the driver.
func say(line string) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	fmt.Fprintln(os.Stdout, line)
}

type report struct {
	ID          string `json:"id"`
	N           int    `json:"n"`
	Piece       int    `json:"piece"`
	CL          bool   `json:"cl"`
	Writes      int    `json:"writes"`
	FailedWrite int    `json:"failed_write"`
	FailedAt    int    `json:"failed_at"`
	Error       string `json:"error"`
	CtxDone     bool   `json:"ctx_done"`
}

func handler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("id")
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n < 0 || n > maxBytes {
		http.Error(w, "n: 0..1048576", http.StatusBadRequest)
		return
	}
	piece := n
	if p := q.Get("piece"); p != "" && p != "0" {
		piece, err = strconv.Atoi(p)
		if err != nil || piece <= 0 {
			http.Error(w, "piece: a positive number", http.StatusBadRequest)
			return
		}
	}
	rep := report{ID: id, N: n, Piece: piece, CL: q.Get("cl") == "1"}
	if rep.CL {
		w.Header().Set("Content-Length", strconv.Itoa(n))
	}
	say("start " + id)
	if q.Get("stay") == "1" {
		// A client that stays and reads: no wait.
	} else if *sleep > 0 {
		time.Sleep(*sleep)
	} else {
		select {
		case <-r.Context().Done():
		case <-time.After(*maxWait):
		}
	}
	rep.CtxDone = r.Context().Err() != nil
	body := make([]byte, piece)
	for i := range body {
		body[i] = 'x'
	}
	for sent := 0; sent < n; {
		k := piece
		if n-sent < k {
			k = n - sent
		}
		rep.Writes++
		if _, err := w.Write(body[:k]); err != nil {
			rep.FailedWrite = rep.Writes
			rep.FailedAt = sent + k
			rep.Error = err.Error()
			break
		}
		sent += k
	}
	line, _ := json.Marshal(rep)
	say(string(line))
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("-addr %q: a loopback address and port, e.g. 127.0.0.1:0", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	say("listening " + ln.Addr().String())
	log.Fatal(http.Serve(ln, http.HandlerFunc(handler)))
}
