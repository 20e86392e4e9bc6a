package handlerbuild

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// coldProfileEnv enables TestColdProfile.
const coldProfileEnv = "HANDLERBUILD_COLDPROFILE"

// TestColdProfile shows where a cold build's time goes (issue 13): it builds
// each handler of this module exactly as Build does, but with an empty
// GOCACHE, and prints the packages that took longest. It is not a check and
// takes minutes, so it runs only on request:
//
//	HANDLERBUILD_COLDPROFILE=1 go test -v -run TestColdProfile ./internal/handlerbuild/
//
// Timings come from `go build -debug-actiongraph`, which records when each
// action started and finished and the CPU time of its commands. `go build
// -json` reports build output and failures but no timings.
//
// An empty GOCACHE is the worst case: the standard library is compiled for
// linux/<arch> too. A developer's first synth on a machine whose cache
// already holds the standard library for that target pays only the non-std
// rows.
func TestColdProfile(t *testing.T) {
	if os.Getenv(coldProfileEnv) == "" {
		t.Skipf("a cold build takes minutes: set %s=1 (and -v) to build the handlers with an empty GOCACHE and print the time per package", coldProfileEnv)
	}
	for _, pkg := range []string{DestinationHandler, SourceHandler} {
		t.Run(filepath.Base(filepath.Dir(pkg)), func(t *testing.T) {
			t.Log(coldProfile(t, pkg))
		})
	}
}

// action is the part of a -debug-actiongraph entry the profile reads.
type action struct {
	Mode      string
	Package   string
	TimeStart time.Time
	TimeDone  time.Time
	CmdUser   time.Duration // summed over the action's commands
	CmdSys    time.Duration
}

func coldProfile(t *testing.T, pkg string) string {
	ctx := context.Background()
	b, err := newBuilder(ctx, Options{Package: pkg, Dir: filepath.Join("..", "..")})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	graph := filepath.Join(tmp, "actiongraph.json")
	gocache := filepath.Join(tmp, "gocache")
	// exec uses the last value of a variable that appears twice.
	env := append(slices.Clip(b.env), "GOCACHE="+gocache)
	args := append([]string{"build", "-debug-actiongraph=" + graph}, buildFlags...)
	args = append(args, "-o", filepath.Join(tmp, BinaryName), pkg)
	start := time.Now()
	if _, err := runGo(ctx, b.dir, env, slices.Concat(b.forced, []string{"GOCACHE=" + gocache}), args...); err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)

	data, err := os.ReadFile(graph)
	if err != nil {
		t.Fatal(err)
	}
	var actions []action
	if err := json.Unmarshal(data, &actions); err != nil {
		t.Fatalf("decoding %s: %v", graph, err)
	}
	modules := packageModules(t, b)

	type row struct {
		name      string // package, or module in the per-module table
		wall, cpu time.Duration
		packages  int
	}
	var rows []row
	var link, compileWall, compileCPU time.Duration
	perModule := map[string]*row{}
	for _, a := range actions {
		wall := a.TimeDone.Sub(a.TimeStart)
		switch a.Mode {
		case "link":
			link = wall
		case "build":
			r := row{name: a.Package, wall: wall, cpu: a.CmdUser + a.CmdSys, packages: 1}
			rows = append(rows, r)
			compileWall += r.wall
			compileCPU += r.cpu
			mod := cmp.Or(modules[a.Package], "std")
			m := perModule[mod]
			if m == nil {
				m = &row{name: mod}
				perModule[mod] = m
			}
			m.wall += r.wall
			m.cpu += r.cpu
			m.packages++
		}
	}
	byWall := func(a, b row) int { return cmp.Compare(b.wall, a.wall) }
	slices.SortFunc(rows, byWall)

	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%s for linux/%s with an empty GOCACHE: %.1fs wall, %d packages compiled "+
		"(compile actions: %.1fs summed wall, %.1fs CPU; up to %d run at once), link %.1fs\n\n",
		pkg, b.goarch, total.Seconds(), len(rows), compileWall.Seconds(), compileCPU.Seconds(), runtime.NumCPU(), link.Seconds())
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\twall s\tCPU s\tpackage")
	for i, r := range rows[:min(15, len(rows))] {
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%s\n", i+1, r.wall.Seconds(), r.cpu.Seconds(), r.name)
	}
	tw.Flush()

	var mods []row
	for _, m := range perModule {
		mods = append(mods, *m)
	}
	slices.SortFunc(mods, byWall)
	fmt.Fprintf(&sb, "\nby module (compile actions summed):\n\n")
	tw = tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "wall s\tCPU s\tpackages\tmodule")
	for _, m := range mods {
		fmt.Fprintf(tw, "%.2f\t%.2f\t%d\t%s\n", m.wall.Seconds(), m.cpu.Seconds(), m.packages, m.name)
	}
	tw.Flush()
	return sb.String()
}

// packageModules maps each non-standard dependency of b.pkg to its module.
func packageModules(t *testing.T, b *builder) map[string]string {
	out, err := b.run(context.Background(), "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", b.pkg)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if p, mod, ok := strings.Cut(line, " "); ok && mod != "" {
			m[p] = mod
		}
	}
	return m
}
