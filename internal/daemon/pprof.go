package daemon

import (
	"net/http"
	"net/http/pprof"
)

// addPProf serves Go's profiler on the health and metrics mux (the
// bootstrap file's pprof: true, or serve --pprof; config refuses it on an
// address other than loopback). The handlers are registered here rather
// than left to net/http/pprof's init, which puts them only on
// http.DefaultServeMux, a mux nothing here serves: without the setting no
// listener answers /debug/pprof/.
func addPProf(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
