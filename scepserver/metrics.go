package scepserver

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the door's requests. A nil *Metrics counts nothing.
type Metrics struct {
	requests *prometheus.CounterVec
}

// NewMetrics registers the door's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clinicgate_scep_requests_total",
		Help: "SCEP requests by operation and result: ok, issued, a refusal's reason code (scep_bad_challenge, scep_bad_key, …), busy, error.",
	}, []string{"operation", "result"})}
	reg.MustRegister(m.requests)
	return m
}

func (m *Metrics) count(op, result string) {
	if m != nil {
		m.requests.WithLabelValues(op, result).Inc()
	}
}
