package e2e

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// The "outgrown one machine" shape: `pando api` on PostgreSQL and an S3
// blobstore, its apps on a joined cell. Two instances answer through the
// router; they go on answering through a restart of the API (which shows
// them again) and while PostgreSQL itself restarts, when the API says the
// database cannot be reached and then serves again by itself.
func TestAPIOnPostgreSQLAndS3_withAJoinedCellKeepsItsAppThroughRestarts(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	pg := pgtest.Own(t)
	dsn := pg.URL(t)
	fake, blobArgs, blobEnv := s3Blobstore(t, "grown")
	s := ownNode(t, "api", blobEnv, func(*server) []string { return append([]string{"--database-url", dsn}, blobArgs...) })
	s.joinCell(t, "cell-grown", "127.0.0.2", "--memory", "4G")
	const name = "grown"
	host := name + ".localhost"
	s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "64M")
	s.mustPando(t, "scale", name, "-i", "2")
	bothAnswer := func(what string) {
		t.Helper()
		eventually(t, what, waitTimeout, func() (bool, string) {
			seen := map[string]int{}
			for range 4 {
				_, body, _ := s.get(host, "/")
				seen[body]++
			}
			return seen["binary app index=0 greeting=\n"] > 0 && seen["binary app index=1 greeting=\n"] > 0, fmt.Sprint(seen)
		})
	}
	showsBoth := func(what string) {
		t.Helper()
		want := regexp.MustCompile(`instances:\s+2/2`)
		eventually(t, what, waitTimeout, func() (bool, string) {
			r := s.pando(t, "app", name)
			return r.code == 0 && want.MatchString(r.out()), r.out()
		})
	}
	bothAnswer("both instances answering through the router")
	requireBlobsInBucket(t, s, fake, "grown")

	if err := s.stop(); err != nil {
		t.Fatalf("stop the API: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("start the API again: %v", err)
	}
	bothAnswer("both instances answering after the API's restart")
	showsBoth("`pando app` showing 2/2 after the API's restart")

	// PostgreSQL restarts: the apps never depend on it.
	pg.Stop(t)
	bothAnswer("both instances answering while PostgreSQL is down")
	r := s.pando(t, "app", name)
	if r.code == 0 {
		t.Fatalf("`pando app` with PostgreSQL down succeeded: %s", r)
	}
	requireOutput(t, r, `database cannot be reached`)
	pg.Start(t)
	showsBoth("`pando app` showing 2/2 once PostgreSQL is back")
	bothAnswer("both instances answering once PostgreSQL is back")
}
