package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
)

// servePprof serves the Go profiler on its own address, so profiles of a
// node under load can be taken (`go tool pprof http://addr/debug/pprof/profile`)
// without exposing them on the kv1 port.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Warn("kv1: pprof", "addr", addr, "err", err)
	}
}
