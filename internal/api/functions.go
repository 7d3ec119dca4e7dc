package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/store"
)

// Content types of code uploads: a WebAssembly module, or a container
// image archive (an OCI image layout or a docker save archive).
const (
	wasmMediaType  = "application/wasm"
	imageMediaType = "application/x-tar"
)

// scanOK is the intake result of code that passed every check.
const scanOK = "ok"

// functionList is the body of GET …/functions.
type functionList struct {
	Functions []ward.Function `json:"functions"`
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request, c *call) error {
	fns, err := s.st.ListFunctions(r.Context(), c.project)
	if err != nil {
		return err
	}
	if fns == nil {
		fns = []ward.Function{}
	}
	s.writeJSON(w, r, http.StatusOK, functionList{Functions: fns})
	return nil
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("fn")
	if err := validFunctionName(name); err != nil {
		return err
	}
	fn, err := s.st.GetFunction(r.Context(), c.project, name)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, fn)
	return nil
}

// putFunction creates (201) or updates (200) a function's spec.
func (s *Server) putFunction(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("fn")
	if err := validFunctionName(name); err != nil {
		return err
	}
	spec, err := decodeFunctionSpec(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		return err
	}
	// Input rules are checked now, at deploy, never first at run time.
	if _, err := privacy.Compile(spec.Input); err != nil {
		return err
	}
	status := http.StatusOK
	old, err := s.st.GetFunction(r.Context(), c.project, name)
	switch {
	case errors.Is(err, ward.ErrNotFound):
		status = http.StatusCreated
		if err := s.checkFunctionsQuota(r, c.project); err != nil {
			return err
		}
	case err != nil:
		return err
	case old.CodeDigest != "" && old.Spec.Runtime != spec.Runtime:
		// The code is for the old runtime: tasks would meet code their
		// sandbox cannot run.
		return &ward.Error{Code: ward.CodeRuntimeMismatch, Field: "runtime",
			Message: fmt.Sprintf("runtime: the function's code is for %s; delete the function to change its runtime", old.Spec.Runtime)}
	}
	fn, err := s.st.PutFunction(r.Context(), &store.PutFunctionParams{Project: c.project, Name: name, Spec: spec, Now: s.now().UTC()})
	if err != nil {
		return err
	}
	s.q.ConfigChanged(c.project)
	s.writeJSON(w, r, status, fn)
	return nil
}

func (s *Server) deleteFunction(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("fn")
	if err := validFunctionName(name); err != nil {
		return err
	}
	if err := s.st.DeleteFunction(r.Context(), c.project, name); err != nil {
		return err
	}
	s.q.ConfigChanged(c.project)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// putCode uploads a function's code — a WebAssembly module for a wasm
// function, an image archive for an oci one — checks it, stores it under its
// digest (within the project's quotas.max_stored_mb), and makes it the
// function's current version.
func (s *Server) putCode(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("fn")
	if err := validFunctionName(name); err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != wasmMediaType && mt != imageMediaType {
		return ward.Errorf(ward.CodeUnsupportedMedia, "code must be sent as Content-Type: %s (a wasm function) or %s (an oci function)", wasmMediaType, imageMediaType)
	}
	old, err := s.st.GetFunction(r.Context(), c.project, name)
	if err != nil {
		return err
	}
	want := ward.RuntimeWasm
	if mt == imageMediaType {
		want = ward.RuntimeOCI
	}
	if old.Spec.Runtime != want {
		return ward.Errorf(ward.CodeRuntimeMismatch, "function %s has runtime %s; %s code is for runtime %s", name, old.Spec.Runtime, mt, want)
	}
	var code []byte
	var digest string
	if want == ward.RuntimeOCI {
		code, digest, err = s.intakeImage(w, r)
	} else {
		code, digest, err = s.intakeModule(w, r)
	}
	if err != nil {
		return err
	}
	if err := s.q.CheckStorage(r.Context(), c.project, name, int64(len(code))); err != nil {
		return err
	}
	fn, err := s.st.PutCode(r.Context(), &store.PutCodeParams{Project: c.project, Function: name, Digest: digest, Code: code, Now: s.now().UTC()})
	if err != nil {
		return err
	}
	s.q.ConfigChanged(c.project)
	s.writeJSON(w, r, http.StatusOK, ward.CodeUploadResponse{Digest: fn.CodeDigest, Version: fn.CodeVersion, Size: int64(len(code)), Scan: scanOK})
	return nil
}

// checkFunctionsQuota refuses a new function in a project that has its
// quotas.max_functions.
func (s *Server) checkFunctionsQuota(r *http.Request, project string) error {
	p, err := s.st.GetProject(r.Context(), project)
	if err != nil {
		return err
	}
	max := p.Quotas.MaxFunctions
	if max == 0 {
		return nil
	}
	fns, err := s.st.ListFunctions(r.Context(), project)
	if err != nil {
		return err
	}
	if len(fns) >= max {
		return ward.Errorf(ward.CodeProjectFunctions, "project %s holds at most %d functions (quotas.max_functions)", project, max)
	}
	return nil
}

// intakeModule reads and checks an uploaded WebAssembly module.
func (s *Server) intakeModule(w http.ResponseWriter, r *http.Request) ([]byte, string, error) {
	code, err := readBody(http.MaxBytesReader(w, r.Body, maxCodeBody), ward.CodeInvalidArgument)
	if err != nil {
		return nil, "", err
	}
	digest := ward.Digest(code)
	if err := s.code.Prepare(r.Context(), sandbox.Artifact{Digest: digest, Code: code}); err != nil {
		return nil, "", err
	}
	return code, digest, nil
}

// intakeImage reads and checks an uploaded image archive and returns it in
// canonical form under its manifest digest.
func (s *Server) intakeImage(w http.ResponseWriter, r *http.Request) ([]byte, string, error) {
	archive, err := readBody(http.MaxBytesReader(w, r.Body, maxImageBody), ward.CodeInvalidArgument)
	if err != nil {
		return nil, "", err
	}
	img, err := image.Intake(archive, image.IntakeOptions{})
	if err != nil {
		return nil, "", err
	}
	return img.Archive, img.Digest, nil
}

// getConfig reads the project's global config, or a function's local one on
// the …/functions/{fn}/config route.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, c *call) error {
	fn := r.PathValue("fn")
	if fn != "" {
		if err := validFunctionName(fn); err != nil {
			return err
		}
	}
	cfg, err := s.st.GetConfig(r.Context(), c.project, fn)
	if err != nil {
		return err
	}
	if cfg == nil {
		cfg = ward.Config{}
	}
	s.writeJSON(w, r, http.StatusOK, cfg)
	return nil
}

// putConfig replaces the global or a function's config.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request, c *call) error {
	fn := r.PathValue("fn")
	if fn != "" {
		if err := validFunctionName(fn); err != nil {
			return err
		}
	}
	cfg, err := decodeConfig(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		return err
	}
	if err := s.st.PutConfig(r.Context(), &store.PutConfigParams{Project: c.project, Function: fn, Config: cfg, Now: s.now().UTC()}); err != nil {
		return err
	}
	s.q.ConfigChanged(c.project)
	s.writeJSON(w, r, http.StatusOK, cfg)
	return nil
}
