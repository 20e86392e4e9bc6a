package handlerbuild

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The benchmarks measure a real handler: DestinationHandler built in this module,
// or HANDLERBUILD_BENCH_PACKAGE in HANDLERBUILD_BENCH_DIR. Each reports the
// median of its iterations as median-ms; run a few iterations only:
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/handlerbuild/
//
// BuildCold starts from an empty handler cache (the Go build cache stays
// warm, as on a developer's machine after the first build); BuildWarm is a
// cache hit, the cost every later synth pays; Key is the part of it spent
// on resolving the key (go env, then the index: reading the manifest and
// hashing what it watches); KeyFull is the key's full computation (go env,
// go list, hashing, go mod edit), which a synth pays when the index misses.
func benchOptions(b *testing.B) Options {
	opts := Options{Package: DestinationHandler, Dir: filepath.Join("..", "..")}
	if p := os.Getenv("HANDLERBUILD_BENCH_PACKAGE"); p != "" {
		opts.Package = p
		opts.Dir = os.Getenv("HANDLERBUILD_BENCH_DIR")
	}
	return opts
}

func reportMedian(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/float64(time.Millisecond), "median-ms")
}

func BenchmarkBuildCold(b *testing.B) {
	opts := benchOptions(b)
	opts.Progress = io.Discard
	var ds []time.Duration
	for b.Loop() {
		opts.CacheDir = b.TempDir()
		start := time.Now()
		r, err := BuildResult(context.Background(), opts)
		ds = append(ds, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if r.Cached {
			b.Fatal("cold build reported a cache hit")
		}
	}
	reportMedian(b, ds)
}

func BenchmarkBuildWarm(b *testing.B) {
	opts := benchOptions(b)
	opts.Progress = io.Discard
	opts.CacheDir = b.TempDir()
	if _, err := Build(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := BuildResult(context.Background(), opts)
		ds = append(ds, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if !r.Cached {
			b.Fatal("warm build was not a cache hit")
		}
	}
	reportMedian(b, ds)
}

func BenchmarkKey(b *testing.B) {
	opts := benchOptions(b)
	opts.CacheDir = b.TempDir()
	opts.Progress = io.Discard
	// The index is recorded once the entry exists, as after any first synth.
	if _, err := Build(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		bl, err := newBuilder(context.Background(), opts)
		if err == nil {
			_, err = bl.key(context.Background())
		}
		ds = append(ds, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if bl.index != indexVerified {
			b.Fatal("the key did not come from the index: was a watched file edited in the last 2 s?")
		}
	}
	reportMedian(b, ds)
}

func BenchmarkKeyFull(b *testing.B) {
	opts := benchOptions(b)
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		bl, err := newBuilder(context.Background(), opts)
		if err == nil {
			_, _, err = bl.computeKey(context.Background())
		}
		ds = append(ds, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	reportMedian(b, ds)
}
