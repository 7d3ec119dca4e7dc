package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/wardhq/ward"
)

// Files of the CA in the server's keys directory.
const (
	CACertFile     = "ca.crt"         // the signer's certificate (PEM, 0644)
	CAKeyFile      = "ca.key"         // the signer's key (PEM PKCS#8, 0600)
	CANextCertFile = "ca-next.crt"    // the staged successor's certificate
	CANextKeyFile  = "ca-next.key"    // the staged successor's key
	CATrustedFile  = "ca-trusted.crt" // retired CAs still trusted (PEM bundle)
)

const (
	caCommonName    = "ward cluster CA"
	caValidityYears = 10
	// clockSkew is how far back NotBefore goes, for peers whose clock is a
	// little behind.
	clockSkew = time.Minute
)

// CA is the cluster CA as loaded from the keys directory: the signer, with
// its key, the staged successor and the retired CAs still trusted. It does
// not change once loaded and is safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	next    *x509.Certificate
	trusted []*x509.Certificate
}

// Cert returns the signer's certificate.
func (ca *CA) Cert() *x509.Certificate { return ca.cert }

// Next returns the staged successor's certificate, or nil when none is
// staged.
func (ca *CA) Next() *x509.Certificate { return ca.next }

// all returns every trusted CA certificate, signer first, without
// duplicates.
func (ca *CA) all() []*x509.Certificate {
	out := []*x509.Certificate{ca.cert}
	if ca.next != nil && !containsCert(out, ca.next) {
		out = append(out, ca.next)
	}
	for _, c := range ca.trusted {
		if !containsCert(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// containsCert reports whether c is in certs.
func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, o := range certs {
		if o.Equal(c) {
			return true
		}
	}
	return false
}

// Bundle returns the PEM of every CA certificate a runner must trust for
// server certificates and a server must trust for client certificates: the
// signer, the staged successor and the retired CAs still trusted.
func (ca *CA) Bundle() []byte {
	var b bytes.Buffer
	for _, c := range ca.all() {
		b.Write(encodeCert(c.Raw))
	}
	return b.Bytes()
}

// Pool returns a new pool holding the certificates of Bundle.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range ca.all() {
		p.AddCert(c)
	}
	return p
}

// newCA makes a self-signed CA valid for ten years from now.
func newCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("pki: serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

// writeCA writes a key and certificate pair, the key first: the certificate
// file is what marks the pair as there.
func writeCA(dir, certName, keyName string, now time.Time) error {
	certPEM, keyPEM, err := newCA(now)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(dir, keyName, keyPEM, keyMode); err != nil {
		return err
	}
	return writeFileAtomic(dir, certName, certPEM, certMode)
}

// InitCA creates the cluster CA in dir (created 0700 if missing) unless
// ca.crt is already there, in which case it leaves the directory alone and
// returns created=false. The CA is self-signed, ECDSA P-256, CN "ward
// cluster CA", valid ten years from now, and signs end-entity certificates
// only.
func InitCA(dir string, now time.Time) (created bool, err error) {
	if err := makeDir(dir); err != nil {
		return false, err
	}
	there, err := exists(filepath.Join(dir, CACertFile))
	if err != nil || there {
		return false, err
	}
	if err := writeCA(dir, CACertFile, CAKeyFile, now); err != nil {
		return false, err
	}
	return true, nil
}

// checkCACert refuses a certificate that cannot be a CA.
func checkCACert(c *x509.Certificate, what string) error {
	if !c.BasicConstraintsValid || !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return ward.Errorf(ward.CodeInvalidArgument, "pki: %s: not a CA certificate", what)
	}
	return nil
}

// loadPair reads a CA certificate and its key and checks they belong
// together.
func loadPair(dir, certName, keyName string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := loadCACert(dir, certName)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := readFile(dir, keyName)
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKey(keyPEM, keyName)
	if err != nil {
		return nil, nil, err
	}
	if !keyMatches(key, cert) {
		return nil, nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s does not match %s", keyName, certName)
	}
	return cert, key, nil
}

// loadCACert reads and checks one CA certificate file.
func loadCACert(dir, name string) (*x509.Certificate, error) {
	b, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	c, err := parseOneCert(b, name)
	if err != nil {
		return nil, err
	}
	return c, checkCACert(c, name)
}

// loadTrusted reads ca-trusted.crt; a missing file is an empty bundle.
func loadTrusted(dir string) ([]*x509.Certificate, error) {
	there, err := exists(filepath.Join(dir, CATrustedFile))
	if err != nil || !there {
		return nil, err
	}
	b, err := readFile(dir, CATrustedFile)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(b, CATrustedFile)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if err := checkCACert(c, CATrustedFile); err != nil {
			return nil, err
		}
	}
	return certs, nil
}

// interrupted reports whether dir is in the middle of a promotion: ca.key
// already holds the successor's key, ca-next.crt still holds its
// certificate.
func interrupted(dir string, key crypto.Signer) bool {
	next, err := loadCACert(dir, CANextCertFile)
	return err == nil && keyMatches(key, next)
}

// LoadCA loads the CA in dir: the signer (ca.crt and ca.key, which must
// match), the staged successor if ca-next.crt is there (with ca-next.key,
// which must match) and the retired CAs of ca-trusted.crt. A missing file
// is an error wrapping fs.ErrNotExist; a corrupt or mismatched one is an
// invalid_argument error naming the file.
func LoadCA(dir string) (*CA, error) {
	cert, err := loadCACert(dir, CACertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(dir, CAKeyFile)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM, CAKeyFile)
	if err != nil {
		return nil, err
	}
	if !keyMatches(key, cert) {
		if interrupted(dir, key) {
			return nil, ward.Errorf(ward.CodeInvalidState, "pki: %s holds the key of %s: a promotion was interrupted; run it again", CAKeyFile, CANextCertFile)
		}
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s does not match %s", CAKeyFile, CACertFile)
	}
	ca := &CA{cert: cert, key: key}
	there, err := exists(filepath.Join(dir, CANextCertFile))
	if err != nil {
		return nil, err
	}
	if there {
		next, _, err := loadPair(dir, CANextCertFile, CANextKeyFile)
		if err != nil {
			return nil, err
		}
		ca.next = next
	}
	if ca.trusted, err = loadTrusted(dir); err != nil {
		return nil, err
	}
	return ca, nil
}

// StageCA creates a successor CA in dir (ca-next.crt, ca-next.key) next to
// the current signer, which stays the signer. Servers loading the directory
// trust the successor from now on (it is in Bundle) but do not sign with it
// until PromoteCA. A successor already staged is an already_exists error.
func StageCA(dir string, now time.Time) error {
	ca, err := LoadCA(dir)
	if err != nil {
		return err
	}
	if ca.next != nil {
		return ward.Errorf(ward.CodeAlreadyExists, "pki: a successor CA is already staged; promote it first")
	}
	return writeCA(dir, CANextCertFile, CANextKeyFile, now)
}

// PromoteCA makes the staged successor the signer: the old signer's
// certificate is appended to ca-trusted.crt (its key is dropped), and
// ca-next.* become ca.*. Retired CAs that expired before now leave
// ca-trusted.crt. Without a staged successor it is an invalid_state error.
// A promotion cut short (a crash between its renames) is finished by
// calling PromoteCA again.
func PromoteCA(dir string, now time.Time) error {
	there, err := exists(filepath.Join(dir, CANextCertFile))
	if err != nil {
		return err
	}
	if !there {
		return ward.Errorf(ward.CodeInvalidState, "pki: no successor CA is staged; stage one first")
	}
	next, err := loadCACert(dir, CANextCertFile)
	if err != nil {
		return err
	}
	keyThere, err := exists(filepath.Join(dir, CANextKeyFile))
	if err != nil {
		return err
	}
	keyName := CANextKeyFile
	if !keyThere {
		// Resuming: the key may already have moved to ca.key.
		keyName = CAKeyFile
	}
	keyPEM, err := readFile(dir, keyName)
	if err != nil {
		return err
	}
	key, err := parseKey(keyPEM, keyName)
	if err != nil {
		return err
	}
	if !keyMatches(key, next) {
		return ward.Errorf(ward.CodeInvalidArgument, "pki: %s does not match %s", keyName, CANextCertFile)
	}
	if now.Before(next.NotBefore) || now.After(next.NotAfter) {
		return ward.Errorf(ward.CodeInvalidState, "pki: the staged CA is not valid now (valid %s to %s)",
			next.NotBefore.UTC().Format(time.RFC3339), next.NotAfter.UTC().Format(time.RFC3339))
	}
	old, err := loadCACert(dir, CACertFile)
	if err != nil {
		return err
	}
	trusted, err := loadTrusted(dir)
	if err != nil {
		return err
	}
	var kept []*x509.Certificate
	var bundle bytes.Buffer
	for _, c := range append(trusted, old) {
		if now.After(c.NotAfter) || c.Equal(next) || containsCert(kept, c) {
			continue
		}
		kept = append(kept, c)
		bundle.Write(encodeCert(c.Raw))
	}
	if err := writeFileAtomic(dir, CATrustedFile, bundle.Bytes(), certMode); err != nil {
		return err
	}
	if keyThere {
		if err := rename(dir, CANextKeyFile, CAKeyFile); err != nil {
			return err
		}
	}
	if err := rename(dir, CANextCertFile, CACertFile); err != nil {
		return err
	}
	return syncDir(dir)
}

// rename renames dir/from to dir/to.
func rename(dir, from, to string) error {
	if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// RetireCAs empties ca-trusted.crt: certificates of the retired CAs are no
// longer trusted. Run it once every runner holds a certificate of the
// current signer.
func RetireCAs(dir string) error {
	if _, err := loadCACert(dir, CACertFile); err != nil {
		return err
	}
	return writeFileAtomic(dir, CATrustedFile, nil, certMode)
}
