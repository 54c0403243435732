package appliance

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// Metrics are the appliance's Prometheus collectors. Labels carry reason
// codes and client names, never user names (unbounded, and personal data).
type Metrics struct {
	Decisions  *prometheus.CounterVec
	Latency    *prometheus.HistogramVec
	Dropped    *prometheus.CounterVec
	Duplicates *prometheus.CounterVec
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
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicgate_duplicates_total",
			Help: "Retransmitted requests answered from the reply cache without a second decision.",
		}, []string{"door"}),
		Accounting: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicgate_accounting_total",
			Help: "Accounting requests recorded, by status type.",
		}, []string{"status"}),
	}
	reg.MustRegister(m.Decisions, m.Latency, m.Dropped, m.Duplicates, m.Accounting)
	return m
}

// Duplicate counts a retransmit answered from the reply cache; m may be nil.
func (m *Metrics) Duplicate(door string) {
	if m != nil {
		m.Duplicates.WithLabelValues(door).Inc()
	}
}

// Drop counts a dropped request; m may be nil.
func (m *Metrics) Drop(door, cause string) {
	if m != nil {
		m.Dropped.WithLabelValues(door, cause).Inc()
	}
}

// upstreamCollector exports each upstream's health at scrape time.
type upstreamCollector struct {
	status func(context.Context) ([]upstream.Health, error)
	up     *prometheus.Desc
	since  *prometheus.Desc
}

// NewUpstreamCollector exports clinicgate_upstream_up (1 up, 0 down or
// misconfigured, absent while unknown) and the time of the last change.
func NewUpstreamCollector(status func(context.Context) ([]upstream.Health, error)) prometheus.Collector {
	return &upstreamCollector{
		status: status,
		up:     prometheus.NewDesc("clinicgate_upstream_up", "Whether an upstream answered its last check (1) or not (0).", []string{"upstream", "kind", "state"}, nil),
		since:  prometheus.NewDesc("clinicgate_upstream_state_since_seconds", "Unix time the upstream's current state began.", []string{"upstream"}, nil),
	}
}

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.up; ch <- c.since }

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs, err := c.status(ctx)
	if err != nil {
		return
	}
	for _, h := range hs {
		if h.State == upstream.StateUnknown {
			continue
		}
		v := 0.0
		if h.State == upstream.StateUp {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, h.Name, h.Kind, string(h.State))
		ch <- prometheus.MustNewConstMetric(c.since, prometheus.GaugeValue, float64(h.Since.Unix()), h.Name)
	}
}
