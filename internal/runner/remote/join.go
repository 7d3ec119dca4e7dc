package remote

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/wardhq/ward/internal/pki"
)

// Join trades a one-time join token for the runner's identity: it makes a
// key pair, sends a certificate signing request to the server at base, and
// returns the key, the certificate the cluster CA issued and the CA bundle.
// The server is trusted only if it presents a certificate chain to the CA
// the token pins, so a token cannot be spent at an impostor.
func Join(ctx context.Context, base, token string) (pki.Identity, error) {
	if err := checkURL(base); err != nil {
		return pki.Identity{}, err
	}
	tok, err := pki.ParseJoinToken(token)
	if err != nil {
		return pki.Identity{}, err
	}
	keyPEM, csrPEM, err := pki.NewRunnerKey()
	if err != nil {
		return pki.Identity{}, err
	}
	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tok.PinnedTLS(), ForceAttemptHTTP2: true},
	}
	defer hc.CloseIdleConnections()
	var resp JoinResponse
	if _, err := post(ctx, hc, strings.TrimRight(base, "/")+PathJoin, JoinRequest{Token: token, CSR: string(csrPEM)}, &resp); err != nil {
		return pki.Identity{}, err
	}
	return pki.Identity{RunnerID: resp.RunnerID, KeyPEM: keyPEM, CertPEM: []byte(resp.Cert), CAPEM: []byte(resp.CA)}, nil
}
