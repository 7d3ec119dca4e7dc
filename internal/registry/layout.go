package registry

import (
	"archive/tar"
	"bytes"
	"math"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wardhq/ward"
)

// ociLayout is the content of the archive's oci-layout file.
const ociLayout = `{"imageLayoutVersion":"1.0.0"}`

// Tar framing: each entry is a 512-byte header and its data padded to a
// multiple of 512; two zero blocks end the archive.
const (
	tarBlock   = 512
	tarTrailer = 2 * tarBlock
)

// entrySize returns the bytes a tar entry of n data bytes takes,
// saturating at math.MaxInt64.
func entrySize(n int64) int64 {
	if n > math.MaxInt64-2*tarBlock {
		return math.MaxInt64
	}
	return tarBlock + (n+tarBlock-1)/tarBlock*tarBlock
}

// blobPath is where the layout keeps a blob.
func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// layoutWriter writes the archive: regular files only, mode 0644, owner 0,
// modification time 0, in the order they are written.
type layoutWriter struct {
	buf bytes.Buffer
	tw  *tar.Writer
}

// newLayoutWriter returns a writer whose buffer holds size bytes.
func newLayoutWriter(size int64) *layoutWriter {
	w := &layoutWriter{}
	if size > 0 && size <= math.MaxInt {
		w.buf.Grow(int(size))
	}
	w.tw = tar.NewWriter(&w.buf)
	return w
}

// header starts a file of size bytes; its data is written to w.tw.
func (w *layoutWriter) header(name string, size int64) error {
	err := w.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
	})
	if err != nil {
		return ward.Errorf(ward.CodeInternal, "writing the image archive: %v", err)
	}
	return nil
}

// file writes a whole file.
func (w *layoutWriter) file(name string, data []byte) error {
	if err := w.header(name, int64(len(data))); err != nil {
		return err
	}
	if _, err := w.tw.Write(data); err != nil {
		return ward.Errorf(ward.CodeInternal, "writing the image archive: %v", err)
	}
	return nil
}

// close ends the archive and returns it.
func (w *layoutWriter) close() ([]byte, error) {
	if err := w.tw.Close(); err != nil {
		return nil, ward.Errorf(ward.CodeInternal, "writing the image archive: %v", err)
	}
	return w.buf.Bytes(), nil
}
