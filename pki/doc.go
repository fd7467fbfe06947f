// Package pki is hostmesh's small certificate authority, in the way of
// `consul tls`: one CA per mesh, a host certificate per meshd (it serves and
// it dials: Raft, the API, forwarding to the leader, the sim hypervisor's
// peer endpoints) and optional client certificates for operators.
//
// Everything is ECDSA P-256 and the standard library. A certificate's role is
// written into it, so a peer's role and name are read from the certificate
// alone once its chain is verified:
//
//	host    CN NAME; DNS SANs NAME, NAME.host.hostmesh, localhost, any --dns;
//	        IP SANs 127.0.0.1 and any --ip; ExtKeyUsage ServerAuth+ClientAuth
//	client  CN NAME; DNS SAN NAME.client.hostmesh; ExtKeyUsage ClientAuth only
//
// An operator certificate can never pass for a host: it lacks both the
// ServerAuth usage and the .host.hostmesh name (HostNameOf checks both).
//
// Files are named as consul names them: hostmesh-ca.pem and
// hostmesh-ca-key.pem, NAME.pem and NAME-key.pem; keys are written 0600,
// certificates 0644, and nothing existing is ever overwritten.
package pki
