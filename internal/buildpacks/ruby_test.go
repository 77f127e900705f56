package buildpacks_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/lifecycle/builder"
	"github.com/pandoplatform/pando/internal/testenv"
)

// hostRuby returns the host's ruby version; the host must have bundler and
// the rack and webrick gems (Debian: ruby ruby-bundler ruby-rack
// ruby-webrick), which the test apps take from the stack.
func hostRuby(t *testing.T) string {
	t.Helper()
	const missing = "no ruby with bundler, rack and webrick on the host (apt-get install ruby ruby-bundler ruby-rack ruby-webrick)"
	if _, err := exec.LookPath("bundle"); err != nil {
		testenv.Missing(t, missing)
	}
	out, err := exec.Command("ruby", "-e", `gem "rack"; gem "webrick"; print RUBY_VERSION`).Output()
	if err != nil {
		testenv.Missing(t, missing)
	}
	return string(out)
}

// greetGem builds greet-1.0.0.gem (Greet.hello) with `gem build` into dir.
func greetGem(t *testing.T, dir string) {
	t.Helper()
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "lib"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "lib", "greet.rb"), []byte("module Greet\n  def self.hello\n    \"hello from greet\"\n  end\nend\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "greet.gemspec"), []byte(`Gem::Specification.new do |s|
  s.name = "greet"
  s.version = "1.0.0"
  s.summary = "A test gem"
  s.authors = ["pando"]
  s.files = ["lib/greet.rb"]
end
`), 0o644))
	cmd := exec.Command("gem", "build", "greet.gemspec", "--output", filepath.Join(dir, "greet-1.0.0.gem"))
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	must(t, os.MkdirAll(dir, 0o755))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gem build: %v\n%s", err, out)
	}
}

// rackApp is a Rack app using greet (vendored), rack and webrick (the
// stack's), answering with greet's hello, ruby's version and RACK_ENV.
var rackApp = map[string]string{
	"Gemfile": "source \"https://rubygems.org\"\ngem \"rack\"\ngem \"webrick\"\ngem \"greet\"\n",
	"config.ru": `require "greet"
run ->(env) { [200, {"content-type" => "text/plain"}, [Greet.hello + " on ruby " + RUBY_VERSION + " in " + ENV["RACK_ENV"].to_s]] }
`,
}

func TestRuby_rackAppWithVendoredGemRunsOnTheStacksRuby(t *testing.T) {
	t.Parallel()
	version := hostRuby(t)
	s := newStage(t, rackApp)
	s.cfg.Env = append(s.cfg.Env, "HOME="+t.TempDir())
	greetGem(t, filepath.Join(s.cfg.BuildDir, "vendor", "cache"))
	res, err := s.build(t)
	out := s.out.String()
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	if want := "bundle exec rackup config.ru -p $PORT -o 0.0.0.0"; res.BuildpackName != "ruby_buildpack" || res.DetectedBuildpack != "ruby 1.0.0" || res.StartCommand != want {
		t.Fatalf("result = %+v, want start %q\n%s", res, want, out)
	}
	for _, want := range []string{"Using the stack's Ruby " + version, "bundle install --jobs=4 --local", "Installing greet 1.0.0", "Using rack ", "no Gemfile.lock"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}

	// The droplet runs elsewhere than it was built: bundler finds the gems.
	moved := filepath.Join(filepath.Dir(s.cfg.BuildDir), "moved")
	must(t, os.Rename(s.cfg.BuildDir, moved))
	s.cfg.BuildDir = moved
	if body, want := serve(t, s, res.StartCommand), "hello from greet on ruby "+version+" in production"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}

	// With the Gemfile.lock bundler wrote: a frozen install.
	if _, err := os.Stat(filepath.Join(moved, "Gemfile.lock")); err != nil {
		t.Fatalf("no Gemfile.lock after staging: %v", err)
	}
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "BUNDLE_FROZEN=true") {
		t.Fatalf("restage: %v\n%s", err, s.out.String())
	}
}

func TestRuby_gemNeitherVendoredNorOnTheStackFailsWithVendoringAdvice(t *testing.T) {
	t.Parallel()
	hostRuby(t)
	// A gem source on a loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	source := "http://" + ln.Addr().String()
	ln.Close()
	s := newStage(t, map[string]string{"Gemfile": "source \"" + source + "\"\ngem \"pando-no-such-gem\"\n", "config.ru": "run ->(env) { [200, {}, []] }\n"})
	s.cfg.Env = append(s.cfg.Env, "HOME="+t.TempDir())
	_, err = s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "egress is off") || !strings.Contains(out, "run 'bundle cache'") {
		t.Fatalf("err = %v\n%s", err, out)
	}

	// With vendor/cache: --local, and the gem is in neither place.
	greetGem(t, filepath.Join(s.cfg.BuildDir, "vendor", "cache"))
	_, err = s.build(t)
	out = s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "neither vendored in vendor/cache nor on the stack") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}

func TestRuby_noRubyOnTheStackFailsNamingIt(t *testing.T) {
	t.Parallel()
	s := newStage(t, rackApp)
	s.cfg.Env = []string{"PATH=" + toolsOnlyPath(t), "CF_STACK=bare"}
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "The stack 'bare' has no Ruby") || strings.Contains(out, "command not found") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}
