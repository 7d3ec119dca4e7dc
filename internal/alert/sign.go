package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock before Verify refuses it (a replayed delivery).
const DefaultTolerance = 5 * time.Minute

// Sign returns the ward.SignatureHeader value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a ward.SignatureHeader value against body as a receiver
// does: the header must parse, its timestamp be within tolerance of now
// (either way), and one of its v1 signatures match (compared in constant
// time). Errors have code invalid_argument and never hold the secret.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ward.Errorf(ward.CodeInvalidArgument, "signature: malformed element")
		}
		switch k {
		case "t":
			if ts != "" {
				return ward.Errorf(ward.CodeInvalidArgument, "signature: more than one timestamp")
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return ward.Errorf(ward.CodeInvalidArgument, "signature: v1 is not a hex SHA-256 HMAC")
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ward.Errorf(ward.CodeInvalidArgument, "signature: needs t= and v1=")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return ward.Errorf(ward.CodeInvalidArgument, "signature: t is not a unix time")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ward.Errorf(ward.CodeInvalidArgument, "signature: timestamp outside the tolerance")
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ward.Errorf(ward.CodeInvalidArgument, "signature: no v1 signature matches")
}
