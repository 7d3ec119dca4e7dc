// Package remote is the runner side of ward's internal runner API: a
// runner.Source that speaks HTTPS with mutual TLS to a server's internal
// listener, and Join, which trades a one-time join token for the runner's
// certificate. The messages of the protocol are defined here too; the
// server side is internal/api.
//
// Every call but Join authenticates with the runner's certificate, issued
// by the cluster CA: the server knows which runner calls from it alone, so
// no request names the runner.
package remote

import (
	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
)

// Paths of the internal API.
const (
	PathJoin      = "/internal/v1/join"
	PathRegister  = "/internal/v1/register"
	PathLease     = "/internal/v1/lease"
	PathHeartbeat = "/internal/v1/heartbeat"
	PathComplete  = "/internal/v1/complete"
	PathRelease   = "/internal/v1/release"
	PathDrained   = "/internal/v1/drained"
	PathLog       = "/internal/v1/log"   // body: a runner.LogChunk
	PathCode      = "/internal/v1/code/" // + {project}/{digest}
)

// MaxLogChunk bounds the text of one live log chunk.
const MaxLogChunk = 1 << 20

// MaxLeaseWait bounds one lease long-poll.
const MaxLeaseWait = 30_000_000_000 // 30s, in nanoseconds as LeaseRequest.Wait travels

// JoinRequest trades a join token for a certificate.
type JoinRequest struct {
	Token string `json:"token"`
	CSR   string `json:"csr"` // PEM certificate signing request
}

// JoinResponse carries the runner's identity: its ID, its certificate and
// the CAs it trusts for servers.
type JoinResponse struct {
	RunnerID string `json:"runner_id"`
	Cert     string `json:"cert"` // PEM
	CA       string `json:"ca"`   // PEM bundle
}

// RegisterResponse answers a registration with the CAs to trust now, so a
// runner picks up a staged CA when it restarts.
type RegisterResponse struct {
	CA string `json:"ca"` // PEM bundle
}

// LeaseResponse carries leased jobs.
type LeaseResponse struct {
	Jobs []runner.Job `json:"jobs"`
}

// HeartbeatRequest lists the leases a runner holds.
type HeartbeatRequest struct {
	Leases []runner.LeaseRef `json:"leases"`
}

// CompleteRequest reports finished runs.
type CompleteRequest struct {
	Results []runner.Result `json:"results"`
}

// CompleteResponse has one entry per result: nil when it was recorded, the
// error otherwise (stale_lease for a run whose lease was lost). The HTTP
// status is 409 when any result was stale, 200 otherwise.
type CompleteResponse struct {
	Errors []*ErrorDetail `json:"errors"`
}

// ErrorBody is the JSON shape of an error response (as on the public API).
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is one error.
type ErrorDetail struct {
	Code    ward.Code `json:"code"`
	Message string    `json:"message"`
}
