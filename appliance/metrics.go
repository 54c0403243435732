package appliance

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the appliance's Prometheus collectors. Labels carry reason
// codes and client names, never user names (unbounded, and personal data).
type Metrics struct {
	Decisions  *prometheus.CounterVec
	Latency    *prometheus.HistogramVec
	Dropped    *prometheus.CounterVec
	Accounting *prometheus.CounterVec
}

// NewMetrics registers the collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicgate_decisions_total",
			Help: "Login decisions by door, outcome and reason code.",
		}, []string{"door", "outcome", "reason"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clinicgate_decision_seconds",
			Help:    "Time to decide a login, including password hashing and audit.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"door", "outcome"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicgate_packets_dropped_total",
			Help: "Requests dropped without an answer, by door and cause.",
		}, []string{"door", "cause"}),
		Accounting: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicgate_accounting_total",
			Help: "Accounting requests recorded, by status type.",
		}, []string{"status"}),
	}
	reg.MustRegister(m.Decisions, m.Latency, m.Dropped, m.Accounting)
	return m
}

// Drop counts a dropped request; m may be nil.
func (m *Metrics) Drop(door, cause string) {
	if m != nil {
		m.Dropped.WithLabelValues(door, cause).Inc()
	}
}
