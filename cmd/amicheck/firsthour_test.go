package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHelpSpellsFlagsAsTheSynopsis: --help lists every flag as the
// synopsis writes them, --name (the flag package accepts both spellings,
// but a reader copies what the help shows).
func TestHelpSpellsFlagsAsTheSynopsis(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("--help exit code %d, want %d", code, exitOK)
	}
	help := stderr.String()
	t.Log(help)
	synopsis, flags, ok := strings.Cut(help, "\nFlags:\n")
	if !ok {
		t.Fatalf("--help has no Flags: section:\n%s", help)
	}
	if single := regexp.MustCompile(`(?m)^\s+-[a-z]`).FindAllString(flags, -1); len(single) > 0 {
		t.Errorf("flags listed with a single dash %q; the synopsis writes --name", single)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z-]+)`).FindAllStringSubmatch(flags, -1) {
		listed[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(synopsis, -1) {
		if !listed[m[1]] {
			t.Errorf("the synopsis names --%s, which the flags do not list", m[1])
		}
	}
	for _, name := range []string{"image-id", "asg", "slr-suffix", "launcher", "launcher-role-arn", "source-profile", "profile", "region", "key-arn", "grant-creator", "json", "timeout"} {
		if !listed[name] {
			t.Errorf("--help does not list --%s", name)
		}
	}
	// The synopsis names every way to choose the principal checked.
	if !strings.Contains(synopsis, "[--asg NAME | --slr-suffix SUFFIX | --launcher KIND [--launcher-role-arn ARN]]") {
		t.Errorf("the synopsis does not offer --launcher:\n%s", synopsis)
	}
	for _, want := range []string{"--launcher KIND\n", "AUTO_SCALING, EKS_MANAGED_NODE_GROUP, EC2_FLEET, SPOT_FLEET, SPOT, ROLE", "--launcher-role-arn ARN\n"} {
		if !strings.Contains(flags, want) {
			t.Errorf("--help does not show %q:\n%s", want, flags)
		}
	}
	if !strings.Contains(flags, "(default 2m0s)") {
		t.Errorf("--help does not show --timeout's default:\n%s", flags)
	}
}

// TestNoCredentialsAnswersWithoutSDKNoise: without credentials, where an
// instance metadata endpoint answers 403 (as on this project's machines),
// the SDK used to log "falling back to IMDSv1" on stderr before amicheck's
// own answer. The built command, run as a user runs it, prints only its
// answer: the caller check fails and says which credentials to use.
func TestNoCredentialsAnswersWithoutSDKNoise(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer imds.Close()
	dir := t.TempDir()
	bin := filepath.Join(dir, "amicheck")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--image-id", "ami-0123456789abcdef0", "--asg", "web", "--region", "us-east-1")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code := cmd.ProcessState.ExitCode(); code != exitFail {
		t.Errorf("exit code %d (%v), want %d", code, err, exitFail)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr is not empty (the SDK's log lines come before amicheck's answer):\n%s", stderr.String())
	}
	first, _, _ := strings.Cut(stdout.String(), "\n")
	if !strings.HasPrefix(first, "FAIL  caller") || !strings.Contains(stdout.String(), "use credentials of the account that owns the Auto Scaling group") {
		t.Errorf("the answer does not start with the failed caller check and its fix:\n%s", stdout.String())
	}
}
