// Package api is hostmesh's public HTTP API: the request and response types
// of every route and one Go client, as Consul's and Nomad's api packages
// are. meshctl, the test harnesses and the benchmarks all talk to meshd
// through it, so TLS, tokens, error decoding and blocking reads live in one
// place.
//
// The package imports neither node, raft, memberlist nor libvirt, so a
// program that only drives a mesh does not link them. Its types mirror the
// replicated state's (package fsm) JSON field for field; a test in package
// node checks that every field meshd writes has its twin here.
package api
