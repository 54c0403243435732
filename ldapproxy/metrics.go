package ldapproxy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the LDAP door's own counters (decisions are counted by the
// gate). A nil *Metrics counts nothing.
type Metrics struct {
	conns   *prometheus.CounterVec
	openNow prometheus.Gauge
	ops     *prometheus.CounterVec
}

// NewMetrics registers the door's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicgate_ldap_connections_total",
			Help: "LDAP connections by what happened at accept: accepted, unknown_client, limit_total, limit_source.",
		}, []string{"result"}),
		openNow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clinicgate_ldap_connections_open",
			Help: "LDAP connections open now.",
		}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicgate_ldap_operations_total",
			Help: "LDAP operations by kind and result (a reason code for binds and refusals).",
		}, []string{"op", "result"}),
	}
	reg.MustRegister(m.conns, m.openNow, m.ops)
	return m
}

func (m *Metrics) conn(result string) {
	if m != nil {
		m.conns.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) open(delta float64) {
	if m != nil {
		m.openNow.Add(delta)
	}
}

func (m *Metrics) op(op, result string) {
	if m != nil {
		m.ops.WithLabelValues(op, result).Inc()
	}
}
