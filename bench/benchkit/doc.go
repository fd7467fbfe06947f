// Package benchkit holds what the hostmesh benchmarks share: medians of
// repeated runs, the JSON result files the benchmark programs write and the
// report program reads, the machine description, and polling with
// deadlines. The programs live in bench/cmd; `make bench` runs them.
package benchkit
