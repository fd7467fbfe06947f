// Package deploy holds what operators install beside meshd: example
// Prometheus alert rules (prometheus/alerts.yml) and a Grafana dashboard
// (grafana/hostmesh.json). Its tests check both with promtool.
package deploy
