package sandboxtest

import (
	"io/fs"
	"testing"

	"github.com/wardhq/ward/internal/image"
	"github.com/wardhq/ward/internal/sandbox"
)

// ContainerUID is the user the Container image runs as.
const ContainerUID = 1000

// GoImage returns the Linux build of a Go program (see GoEcho and friends)
// as a single-layer image whose command is the program at /task. It skips
// tb when no Go toolchain can build it.
func GoImage(tb testing.TB, name string) sandbox.Artifact {
	tb.Helper()
	progs, err := linuxPrograms()
	if err != nil {
		tb.Skipf("Go programs for Linux are unavailable: %v", err)
	}
	return goImage(tb, progs, name)
}

func goImage(tb testing.TB, progs map[string][]byte, name string) sandbox.Artifact {
	tb.Helper()
	code, ok := progs[name]
	if !ok {
		tb.Fatalf("sandboxtest: no Go program %q", name)
	}
	return buildImage(tb, image.BuildOptions{
		Files:      []image.File{{Path: "/task", Mode: 0o755, Data: code}},
		Entrypoint: []string{"/task"},
	})
}

func buildImage(tb testing.TB, opts image.BuildOptions) sandbox.Artifact {
	tb.Helper()
	img, err := image.Build(opts)
	if err != nil {
		tb.Fatalf("sandboxtest: build image: %v", err)
	}
	return sandbox.Artifact{Digest: img.Digest, Code: img.Archive}
}

// ContainerImage returns the image of the container probe: gocontainer at
// /probe, run as user, with gosuid installed setuid root at /suid.
func ContainerImage(tb testing.TB, user string) sandbox.Artifact {
	tb.Helper()
	progs, err := linuxPrograms()
	if err != nil {
		tb.Skipf("Go programs for Linux are unavailable: %v", err)
	}
	return buildImage(tb, image.BuildOptions{
		Files: []image.File{
			{Path: "/probe", Mode: 0o755, Data: progs[GoContainer]},
			{Path: "/suid", Mode: 0o755 | fs.ModeSetuid, Data: progs[GoSUID]},
		},
		Entrypoint: []string{"/probe"},
		User:       user,
	})
}

// OCIModules returns the images the conformance suite runs against a
// container sandbox: the Go programs built for Linux, each alone in a
// single-layer image. Container tasks have no wasm trap, so Trap is left
// out. When no Go toolchain can build them, tb is skipped.
func OCIModules(tb testing.TB) Modules {
	tb.Helper()
	progs, err := linuxPrograms()
	if err != nil {
		tb.Skipf("Go programs for Linux are unavailable: %v", err)
	}
	img := func(name string) sandbox.Artifact { return goImage(tb, progs, name) }
	return Modules{
		Echo:          img(GoEcho),
		Env:           img(GoEnv),
		Loop:          img(GoLoop),
		MemBomb:       img(GoMemBomb),
		Flood:         img(GoFlood),
		Exit3:         img(GoExit3),
		LogFlood:      img(GoLogFlood),
		GoMemBomb:     img(GoMemBomb),
		GoPanic:       img(GoPanic),
		GoProbe:       img(GoProbe),
		SlowLog:       img(GoSlowLog),
		ForkBomb:      img(GoForkBomb),
		Container:     ContainerImage(tb, "1000"),
		ContainerRoot: ContainerImage(tb, ""),
		ImplicitEnv:   []string{"HOME=/tmp"},
	}
}
