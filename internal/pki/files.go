package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wardhq/ward"
)

// File modes: keys are readable by their owner only.
const (
	dirMode  = 0o700
	certMode = 0o644
	keyMode  = 0o600
)

// writeFileAtomic writes data to dir/name through a temporary file in the
// same directory and a rename, so a reader sees the old file or the new one,
// never a part. The mode is set explicitly, whatever the umask.
func writeFileAtomic(dir, name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("pki: write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("pki: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("pki: write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("pki: write %s: %w", name, err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pki: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pki: sync %s: %w", dir, err)
	}
	return nil
}

// makeDir creates dir (mode 0700) if it is missing.
func makeDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("pki: create %s: %w", dir, err)
	}
	return nil
}

// exists reports whether path exists; errors other than "not there" are
// returned.
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if os.IsNotExist(err) {
		return false, nil
	}
	return false, fmt.Errorf("pki: %w", err)
}

// encodeCert returns the PEM of a DER certificate.
func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// encodeKey returns the PEM (PKCS#8) of a private key.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCerts parses a PEM bundle of certificates. Any other block, or text
// that is not PEM, is an error; an empty bundle is not. what names the data
// in errors.
func parseCerts(data []byte, what string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: a %q PEM block where a certificate belongs", what, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: not a valid certificate: %v", what, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: not a PEM certificate bundle", what)
	}
	return certs, nil
}

// parseOneCert parses PEM holding exactly one certificate.
func parseOneCert(data []byte, what string) (*x509.Certificate, error) {
	certs, err := parseCerts(data, what)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: want one certificate, found %d", what, len(certs))
	}
	return certs[0], nil
}

// parseKey parses a PEM PKCS#8 private key. Errors never quote the key.
func parseKey(data []byte, what string) (crypto.Signer, error) {
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: not a single PEM \"PRIVATE KEY\" block", what)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: not a valid PKCS#8 key", what)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "pki: %s: a %T cannot sign", what, k)
	}
	return s, nil
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// readFile reads dir/name; a missing file is an error wrapping
// fs.ErrNotExist.
func readFile(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return b, nil
}
