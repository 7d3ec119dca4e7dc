// Package pki is the identity layer of ward's runner API: the cluster CA,
// runner and server certificates, the mutual-TLS configurations and the
// one-time join tokens.
//
// # Model
//
// The servers share one cluster CA, kept in the server's keys directory
// (ca.crt, ca.key). It signs two kinds of certificate and nothing else:
//
//   - server certificates (ServerAuth only) for the runner listener, made
//     fresh by each server at start (CA.ServerCert);
//   - runner certificates (ClientAuth only), one per runner, whose only
//     identity is the URI SAN ward://runner/<id> (CA.SignRunner). The runner
//     makes its own key (NewRunnerKey); the key never leaves it.
//
// The runner listener (ServerTLS) takes a client certificate if one is given
// and verifies it against the CA at the handshake, so a forged, foreign or
// expired certificate never gets a connection. The join endpoint is the one
// call made without a certificate; every other handler asks RunnerID, which
// answers only from a verified chain.
//
// A runner without a certificate joins with a one-time token
// (wardjoin_<id>.<secret>.<pin>, see JoinToken): the secret proves the admin
// allowed it (the store keeps only its hash), and the pin, the SHA-256 of the
// CA certificate, lets the runner check the server before it trusts anything
// (JoinToken.PinnedTLS). It sends a CSR, receives its certificate and the CA
// bundle, and keeps them as its Identity (runner.key, runner.crt, ca.crt).
//
// # CA rotation
//
// Besides the signer, the keys directory may hold a staged successor
// (ca-next.crt, ca-next.key) and retired CAs that are still trusted
// (ca-trusted.crt). CA.Bundle and CA.Pool hold all of them, so both sides
// trust every CA of the rotation while it runs. The order matters:
//
//  1. StageCA: create the successor; restart the servers so they trust it.
//  2. Every runner refreshes its CA bundle (it now includes the successor),
//     so it will trust server certificates signed by it.
//  3. PromoteCA: the successor becomes the signer, the old signer moves to
//     ca-trusted.crt; restart the servers. Old runner certificates still
//     work; new ones come from the new CA.
//  4. Every runner joins again (or renews) to get a certificate of the new CA.
//  5. RetireCAs: forget the old CAs; restart the servers. A runner that
//     skipped step 4 is refused from now on.
//
// A join token pins the signer of the moment it was made: tokens made before
// PromoteCA no longer match the servers after it; make new ones.
//
// The rotation functions are meant for one operator command at a time; they
// are not safe against concurrent callers on the same directory.
package pki
