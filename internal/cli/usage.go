package cli

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
)

// FlagError words an error reading a command's flags for users: the
// value's problem in plain words instead of Go's parser message, and
// where the command's flags are listed. The root command sets it with
// SetFlagErrorFunc; its subcommands inherit it.
func FlagError(cmd *cobra.Command, err error) error {
	msg := parseErrorRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		sub := parseErrorRE.FindStringSubmatch(m)
		switch {
		case sub[2] == "value out of range":
			return "out of range"
		case sub[1] == "Int" || sub[1] == "Uint":
			return "not a whole number"
		case sub[1] == "Float":
			return "not a number"
		case sub[1] == "Bool":
			return "not true or false"
		}
		return m
	})
	if i := strings.Index(msg, "time: "); i >= 0 && strings.Contains(msg[i:], "duration") {
		msg = msg[:i] + msg[i+len("time: "):] + ": give one such as 90s, 5m or 1h30m"
	}
	return fmt.Errorf("%s ('%s' lists its flags)", msg, helpLine(cmd))
}

// parseErrorRE matches strconv's errors inside pflag's "invalid argument"
// errors, e.g. `strconv.ParseInt: parsing "x": invalid syntax`.
var parseErrorRE = regexp.MustCompile(`strconv\.Parse(Int|Uint|Float|Bool): parsing "(?:[^"\\]|\\.)*": (invalid syntax|value out of range)`)

// helpLine is the command that shows cmd's help, e.g. "pando help scale".
func helpLine(cmd *cobra.Command) string {
	root := cmd.Root().Name()
	if cmd == cmd.Root() {
		return root + " --help"
	}
	return root + " help " + strings.TrimPrefix(cmd.CommandPath(), root+" ")
}

// unknownCommand rewrites cobra's several-line unknown command error
// ("unknown command "x" for "pando"\n\nDid you mean this?\n\tpush\n") as
// one line that says where the verbs are listed.
func unknownCommand(msg string) (string, bool) {
	first, rest, _ := strings.Cut(msg, "\n")
	if !strings.HasPrefix(first, "unknown command ") {
		return msg, false
	}
	if strings.HasPrefix(first, `unknown command "ssh" `) {
		// cf ssh has no counterpart (cobra would suggest 'push'): say so,
		// and what does the usual job of it.
		return first + ": Pando has no ssh into app instances; run a command in the app's droplet with " +
			"'pando run-task NAME --command CMD --wait' (its output is shown), and see the app's output with 'pando logs NAME --recent'", true
	}
	var suggestions []string
	for _, line := range strings.Split(rest, "\n") {
		if s, ok := strings.CutPrefix(line, "\t"); ok && s != "" {
			suggestions = append(suggestions, "'"+s+"'")
		}
	}
	out := first
	switch n := len(suggestions); {
	case n == 1:
		out += "; did you mean " + suggestions[0] + "?"
	case n > 1:
		out += "; did you mean " + strings.Join(suggestions[:n-1], ", ") + " or " + suggestions[n-1] + "?"
	}
	return out + " ('pando --help' lists the verbs)", true
}

// StrictHelp makes 'pando help TOPIC' with an unknown topic an error (exit
// status 1) saying where the verbs are listed, instead of cobra's usage
// text with exit status 0. Call it once every command is added.
func StrictHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() != "help" || c.Run == nil {
			continue
		}
		show := c.Run
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if found, _, err := root.Find(args); err != nil || found == nil {
				return fmt.Errorf("unknown help topic %q ('%s --help' lists the verbs)", strings.Join(args, " "), root.Name())
			}
			show(cmd, args)
			return nil
		}
	}
}
