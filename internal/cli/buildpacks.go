package cli

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) buildpacksCmd() *cobra.Command {
	return e.platformCommand("buildpacks", "List admin buildpacks in detection order", func(ctx context.Context, s *session) error {
		s.out("Getting buildpacks as %s...\n\n", s.user())
		bps, err := s.c.Buildpacks(ctx)
		if err != nil {
			return err
		}
		if len(bps) == 0 {
			s.out("No buildpacks found.\n")
			return nil
		}
		tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
		fmt.Fprintf(tw, "position\tname\tstack\tenabled\tlocked\tstate\tfilename\n")
		for _, bp := range bps {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%t\t%t\t%s\t%s\n", bp.Position, bp.Name, deref(bp.Stack), bp.Enabled, bp.Locked, bp.State, deref(bp.Filename))
		}
		return tw.Flush()
	})
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (e *env) createBuildpackCmd() *cobra.Command {
	var disable bool
	cmd := &cobra.Command{
		Use:   "create-buildpack NAME ZIP|DIR POSITION",
		Short: "Upload an admin buildpack",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			pos, err := parsePosition(args[2])
			if err != nil {
				return err
			}
			s, err := e.newSession(ctx, false)
			if err != nil {
				return err
			}
			return s.createBuildpack(ctx, args[0], args[1], pos, !disable)
		},
	}
	cmd.Flags().BoolVar(&disable, "disable", false, "create it disabled")
	return cmd
}

func parsePosition(s string) (int, error) {
	pos, err := strconv.Atoi(s)
	if err != nil || pos < 1 {
		return 0, fmt.Errorf("position must be a number from 1 up, not %q", s)
	}
	return pos, nil
}

// createBuildpack creates an admin buildpack and uploads its zip. A
// buildpack of that name left without files by an earlier failed upload is
// reused rather than refused.
func (s *session) createBuildpack(ctx context.Context, name, src string, position int, enabled bool) error {
	z, err := prepareBuildpackZip(src)
	if err != nil {
		return err
	}
	defer z.cleanup()
	s.out("Creating buildpack %s as %s...\n", name, s.user())
	same, err := s.c.BuildpacksByName(ctx, name)
	if err != nil {
		return err
	}
	var bp *api.Buildpack
	for i := range same {
		// create-buildpack assigns no stack, so only a stackless one clashes.
		if deref(same[i].Stack) == "" {
			bp = &same[i]
		}
	}
	switch {
	case bp == nil:
		if bp, err = s.c.CreateBuildpack(ctx, name, position, enabled); err != nil {
			return err
		}
	case bp.State == "AWAITING_UPLOAD":
		s.out("Buildpack %s exists without files (an earlier upload failed): uploading to it.\n", name)
		var u api.BuildpackUpdate
		if bp.Position != position {
			u.Position = &position
		}
		if bp.Enabled != enabled {
			u.Enabled = &enabled
		}
		if u != (api.BuildpackUpdate{}) {
			if bp, err = s.c.UpdateBuildpack(ctx, bp.GUID, u); err != nil {
				return err
			}
		}
	default:
		s.errf("TIP: use 'pando update-buildpack %s -p %s' to replace its files.\n", name, src)
		return fmt.Errorf("buildpack %s already exists", name)
	}
	s.out("OK\n\n")
	return s.uploadBuildpackZip(ctx, bp, z)
}

// buildpackZip is a buildpack zip ready to upload.
type buildpackZip struct {
	path, filename string
	size           int64
	cleanup        func()
}

// prepareBuildpackZip checks src and, for a directory, zips its contents
// into a temporary file that cleanup removes.
func prepareBuildpackZip(src string) (*buildpackZip, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("buildpack: %w", err)
	}
	if !fi.IsDir() {
		zr, err := zip.OpenReader(src)
		if err != nil {
			return nil, fmt.Errorf("buildpack %s is not a zip file (%v): give a buildpack's .zip or its directory", src, err)
		}
		names := make([]string, 0, len(zr.File))
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		zr.Close()
		if err := checkBuildpackFiles(src, names, false); err != nil {
			return nil, err
		}
		return &buildpackZip{path: src, filename: filepath.Base(src), size: fi.Size(), cleanup: func() {}}, nil
	}
	files, err := collectFiles(src)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.rel)
	}
	if err := checkBuildpackFiles(src, names, true); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "pando-buildpack-*.zip")
	if err != nil {
		return nil, fmt.Errorf("zip buildpack: %w", err)
	}
	z := &buildpackZip{path: tmp.Name(), filename: filepath.Base(filepath.Clean(src)) + ".zip"}
	z.cleanup = func() { _ = os.Remove(z.path) }
	tmp.Close()
	if err := writeZip(z.path, files); err != nil {
		z.cleanup()
		return nil, fmt.Errorf("zip buildpack: %w", err)
	}
	if fi, err = os.Stat(z.path); err != nil {
		z.cleanup()
		return nil, fmt.Errorf("zip buildpack: %w", err)
	}
	z.size = fi.Size()
	return z, nil
}

// checkBuildpackFiles refuses, before anything is created on the server,
// a buildpack without the scripts the builder runs (the server checks the
// same; refused there, the buildpack is left waiting for an upload).
func checkBuildpackFiles(src string, names []string, dir bool) error {
	have := map[string]bool{}
	nested := ""
	for _, n := range names {
		n = strings.TrimPrefix(path.Clean(strings.ReplaceAll(n, "\\", "/")), "./")
		have[n] = true
		if i := strings.Index(n, "/bin/"); i > 0 && nested == "" {
			switch n[i+len("/bin/"):] {
			case "compile", "supply", "finalize":
				nested = n[:i]
			}
		}
	}
	if have["bin/compile"] || have["bin/supply"] || have["bin/finalize"] {
		return nil
	}
	switch {
	case !dir && nested != "":
		return fmt.Errorf("buildpack %s has its scripts under %s/bin, not bin/ at the zip's root: zip the contents of %s, not the directory itself (or give the directory)", src, nested, nested)
	case nested != "":
		return fmt.Errorf("buildpack directory %s has its scripts under %s/bin: give %s", src, nested, filepath.Join(src, nested))
	}
	return fmt.Errorf("buildpack %s has no bin/compile, bin/supply or bin/finalize: a buildpack needs bin/detect, bin/release and bin/finalize (or bin/compile; bin/supply for one that is not last)", src)
}

func (s *session) uploadBuildpackZip(ctx context.Context, bp *api.Buildpack, z *buildpackZip) error {
	s.out("Uploading buildpack %s as %s...\n", bp.Name, s.user())
	prog := s.newProgress()
	err := s.c.UploadBuildpack(ctx, bp.GUID, api.Upload{
		Open:     func() (io.ReadCloser, error) { return os.Open(z.path) },
		Size:     z.size,
		Filename: z.filename,
		Progress: prog.update,
	})
	prog.done()
	if err != nil {
		return err
	}
	s.out("OK\n")
	return nil
}

// findBuildpack finds the one buildpack called name (on stack, when
// stackGiven). It answers an error wrapping api.ErrNotFound when there is
// none.
func (s *session) findBuildpack(ctx context.Context, name, stack string, stackGiven bool) (*api.Buildpack, error) {
	all, err := s.c.BuildpacksByName(ctx, name)
	if err != nil {
		return nil, err
	}
	var found []api.Buildpack
	for _, bp := range all {
		if bp.Name == name && (!stackGiven || deref(bp.Stack) == stack) {
			found = append(found, bp)
		}
	}
	switch len(found) {
	case 0:
		if stackGiven {
			return nil, fmt.Errorf("buildpack '%s' with stack '%s' %w", name, stack, api.ErrNotFound)
		}
		return nil, fmt.Errorf("buildpack '%s' %w", name, api.ErrNotFound)
	case 1:
		return &found[0], nil
	}
	stacks := make([]string, 0, len(found))
	for _, bp := range found {
		st := deref(bp.Stack)
		if st == "" {
			st = "(none)"
		}
		stacks = append(stacks, st)
	}
	return nil, fmt.Errorf("several buildpacks are named %s (stacks: %s): choose one with -s STACK", name, strings.Join(stacks, ", "))
}

func (e *env) deleteBuildpackCmd() *cobra.Command {
	var force bool
	var stack string
	cmd := &cobra.Command{
		Use:   "delete-buildpack NAME",
		Short: "Delete an admin buildpack",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			name := args[0]
			if !force && !e.confirm(fmt.Sprintf("Really delete the buildpack %s?", name)) {
				e.out("Delete cancelled\n")
				return nil
			}
			s, err := e.newSession(ctx, false)
			if err != nil {
				return err
			}
			s.out("Deleting buildpack %s as %s...\n", name, s.user())
			bp, err := s.findBuildpack(ctx, name, stack, cmd.Flags().Changed("stack"))
			if errors.Is(err, api.ErrNotFound) {
				s.out("Buildpack '%s' does not exist.\nOK\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			if err := s.c.DeleteBuildpack(ctx, bp.GUID); err != nil && !api.IsNotFound(err) {
				return fmt.Errorf("delete buildpack %s: %w", name, err)
			}
			s.out("OK\n")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().StringVarP(&stack, "stack", "s", "", "the stack of the buildpack to delete, when several share the name")
	return cmd
}

// buildpackChange is what update-buildpack was asked to change.
type buildpackChange struct {
	path            string
	stack           string
	stackGiven      bool
	position        *int
	enabled, locked *bool
}

func (e *env) updateBuildpackCmd() *cobra.Command {
	var ch buildpackChange
	var position int
	var enable, disable, lock, unlock bool
	cmd := &cobra.Command{
		Use:   "update-buildpack NAME [-p ZIP|DIR] [-i POSITION] [--enable|--disable] [--lock|--unlock]",
		Short: "Change an admin buildpack's files, position, or enabled or locked flag",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			fl := cmd.Flags()
			if fl.Changed("position") {
				if position < 1 {
					return fmt.Errorf("position must be a number from 1 up, not %d", position)
				}
				ch.position = &position
			}
			switch {
			case enable:
				ch.enabled = ptr(true)
			case disable:
				ch.enabled = ptr(false)
			}
			switch {
			case lock:
				ch.locked = ptr(true)
			case unlock:
				ch.locked = ptr(false)
			}
			ch.stackGiven = fl.Changed("stack")
			if ch.path == "" && ch.position == nil && ch.enabled == nil && ch.locked == nil {
				return errors.New("nothing to update: give -p ZIP, -i POSITION, --enable/--disable or --lock/--unlock")
			}
			s, err := e.newSession(ctx, false)
			if err != nil {
				return err
			}
			return s.updateBuildpack(ctx, args[0], ch)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&ch.path, "path", "p", "", "new buildpack zip (or directory) to upload")
	fl.IntVarP(&position, "position", "i", 0, "new position in the detection order (from 1)")
	fl.BoolVar(&enable, "enable", false, "take part in detection")
	fl.BoolVar(&disable, "disable", false, "take no part in detection")
	fl.BoolVar(&lock, "lock", false, "refuse new files until unlocked")
	fl.BoolVar(&unlock, "unlock", false, "accept new files again")
	fl.StringVarP(&ch.stack, "stack", "s", "", "the stack of the buildpack to update, when several share the name")
	cmd.MarkFlagsMutuallyExclusive("enable", "disable")
	cmd.MarkFlagsMutuallyExclusive("lock", "unlock")
	return cmd
}

func ptr[T any](v T) *T { return &v }

func (s *session) updateBuildpack(ctx context.Context, name string, ch buildpackChange) error {
	var z *buildpackZip
	if ch.path != "" {
		var err error
		if z, err = prepareBuildpackZip(ch.path); err != nil {
			return err
		}
		defer z.cleanup()
	}
	s.out("Updating buildpack %s as %s...\n", name, s.user())
	bp, err := s.findBuildpack(ctx, name, ch.stack, ch.stackGiven)
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("buildpack '%s' not found ('pando buildpacks' lists them)", name)
	}
	if err != nil {
		return err
	}
	unlocking := ch.locked != nil && !*ch.locked
	if z != nil && bp.Locked && !unlocking {
		return fmt.Errorf("buildpack %s is locked: add --unlock to upload new files", name)
	}
	u := api.BuildpackUpdate{Position: ch.position, Enabled: ch.enabled}
	// A locked buildpack refuses uploads: lock only after the new files.
	lockAfter := z != nil && ch.locked != nil && *ch.locked
	if !lockAfter {
		u.Locked = ch.locked
	}
	if u != (api.BuildpackUpdate{}) {
		if bp, err = s.c.UpdateBuildpack(ctx, bp.GUID, u); err != nil {
			return err
		}
	}
	s.out("OK\n")
	if z == nil {
		return nil
	}
	s.out("\n")
	if err := s.uploadBuildpackZip(ctx, bp, z); err != nil {
		return err
	}
	if lockAfter {
		if _, err := s.c.UpdateBuildpack(ctx, bp.GUID, api.BuildpackUpdate{Locked: ptr(true)}); err != nil {
			return fmt.Errorf("lock buildpack %s: %w", name, err)
		}
	}
	return nil
}
