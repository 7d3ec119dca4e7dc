// Package image takes in container images and unpacks their root
// filesystems.
//
// Intake checks an uploaded archive, either an OCI image layout as a tar or
// a `docker save` archive, and returns the image in ward's canonical form: a
// deterministic tar holding an OCI image layout with exactly one image. The
// image's identity (Image.Digest) is the digest of its manifest. Open checks
// a canonical archive again, against the digest it was stored under, before
// a runner unpacks it; Unpack writes the root filesystem into an empty
// directory; ResolveUser turns the config's User into numeric ids; Build
// makes a small single-layer image from a list of files.
//
// # Choices
//
//   - Uploaded OCI layouts keep their manifest, config and layer blobs byte
//     for byte, so Image.Digest equals the registry digest of the platform's
//     manifest (for a multi-platform index, the chosen platform manifest's
//     digest, not the index's). A docker save archive gets a synthesized OCI
//     manifest over its config as is and its layers stored uncompressed
//     (media type application/vnd.oci.image.layer.v1.tar), whose digests are
//     then the config's diff_ids.
//   - When an archive holds both an OCI layout (oci-layout and index.json)
//     and a manifest.json, as Docker 25 and later write, the OCI layout is
//     used and manifest.json is ignored.
//   - An index with one manifest and no platform is taken as it is; among
//     several, the first whose platform is linux/GOARCH is taken (variants
//     are not compared). Nested indexes are followed to a depth of four.
//   - The config's os must be "linux" and its architecture runtime.GOARCH; an
//     empty architecture is rejected, since nothing then says the binaries
//     can run here.
//   - Symbolic links in the outer archive are accepted only as aliases of a
//     regular file in the same archive (docker save writes
//     <id>/layer.tar as a link to an identical layer saved before); a link
//     that leaves the archive, dangles or names a directory is rejected, and
//     so are hard links, devices and fifos.
//   - Layer entry names with a leading "/" are taken relative to the image
//     root; a name that still climbs above the root after cleaning is
//     unsafe_layer. Absolute symlink targets are allowed (they are resolved
//     inside the container); relative targets that climb above the root,
//     resolved lexically from the link's directory, are unsafe_layer.
//   - Layers may not write through a symbolic link made by an earlier entry,
//     nor hard-link to anything but an earlier non-directory entry of the
//     image. Sparse files, devices and fifos are refused. Extended
//     attributes are not applied.
//   - Whiteouts follow the OCI rules: a layer's whiteouts and opaque markers
//     hide lower layers' files only, whatever their place in the layer's tar.
//     AUFS metadata entries (.wh..wh.*) are ignored.
//
// Unpack does not trust those checks alone: it writes through an os.Root,
// so no path or link can make it write outside the target directory, and it
// never creates device nodes.
package image
