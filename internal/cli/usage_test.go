package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// usageRoot is a root command set up as cmd/pando's, with a scale-like
// verb and a nested one.
func usageRoot() *cobra.Command {
	root := &cobra.Command{Use: "pando", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(FlagError)
	scale := &cobra.Command{Use: "scale NAME", RunE: func(*cobra.Command, []string) error { return nil }}
	scale.Flags().IntP("instances", "i", 0, "")
	scale.Flags().Bool("force", false, "")
	scale.Flags().Float64("ratio", 0, "")
	apps := &cobra.Command{Use: "apps", RunE: func(*cobra.Command, []string) error { return nil }}
	drain := &cobra.Command{Use: "drain CELL", RunE: func(*cobra.Command, []string) error { return nil }}
	drain.Flags().Duration("timeout", time.Minute, "")
	cell := &cobra.Command{Use: "cell"}
	cell.AddCommand(drain)
	push := &cobra.Command{Use: "push", RunE: func(*cobra.Command, []string) error { return nil }}
	root.AddCommand(scale, apps, push, &cobra.Command{Use: "app", Run: func(*cobra.Command, []string) {}}, cell)
	return root
}

// What a user mistypes is one line on stderr that says what is wrong in
// plain words (not Go's parser messages) and where to look.
func TestUsageErrors_sayWhatIsWrongAndWhereToLook(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scale", "web", "-i", "x"}, `error: invalid argument "x" for "-i, --instances" flag: not a whole number ('pando help scale' lists its flags)`},
		{[]string{"scale", "web", "-i", "99999999999999999999"}, `flag: out of range ('pando help scale' lists its flags)`},
		{[]string{"scale", "web", "--force=maybe"}, `flag: not true or false ('pando help scale' lists its flags)`},
		{[]string{"scale", "web", "--ratio", "half"}, `flag: not a number ('pando help scale' lists its flags)`},
		{[]string{"cell", "drain", "c1", "--timeout", "5"}, `error: invalid argument "5" for "--timeout" flag: missing unit in duration "5": give one such as 90s, 5m or 1h30m ('pando help cell drain' lists its flags)`},
		{[]string{"apps", "--bogus"}, `error: unknown flag: --bogus ('pando help apps' lists its flags)`},
		{[]string{"--bogus"}, `error: unknown flag: --bogus ('pando --help' lists its flags)`},
		{[]string{"aps"}, `error: unknown command "aps" for "pando"; did you mean 'apps' or 'app'? ('pando --help' lists the verbs)`},
		// Not "did you mean 'push'?" (cobra's nearest verb).
		{[]string{"ssh", "web"}, `error: unknown command "ssh" for "pando": Pando has no ssh into app instances; run a command in the app's droplet with ` +
			`'pando run-task NAME --command CMD --wait' (its output is shown), and see the app's output with 'pando logs NAME --recent'` + "\n"},
		{[]string{"frobnicate"}, `error: unknown command "frobnicate" for "pando" ('pando --help' lists the verbs)`},
	} {
		root := usageRoot()
		root.SetArgs(tc.args)
		err := root.Execute()
		if err == nil {
			t.Errorf("pando %s: no error", strings.Join(tc.args, " "))
			continue
		}
		var stderr bytes.Buffer
		if code := ReportError(&stderr, err); code != 1 {
			t.Errorf("pando %s: exit %d", strings.Join(tc.args, " "), code)
		}
		got := stderr.String()
		if strings.Count(got, "\n") != 1 || !strings.Contains(got, tc.want) || strings.Contains(got, "strconv") {
			t.Errorf("pando %s:\n got %q\nwant one line with %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}
