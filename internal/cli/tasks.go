package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// logSourceLoss tags the log store's note that a reader lost lines.
const logSourceLoss = "LGR"

func (e *env) runTaskCmd() *cobra.Command {
	var command, name, memory, disk string
	var wait bool
	cmd := e.appCommand("run-task NAME --command CMD", "Run a one-off task (a command) in an app's droplet", 1,
		func(ctx context.Context, s *session, args []string) error {
			if len(args) == 2 { // cf CLI v6's positional command
				command = args[1]
			}
			if strings.TrimSpace(command) == "" {
				return errors.New("a command is required: pando run-task NAME --command CMD")
			}
			req := api.TaskRequest{Command: command, Name: name}
			var err error
			if memory != "" {
				if req.MemoryInMB, err = parseMegabytes(memory); err != nil {
					return err
				}
			}
			if disk != "" {
				if req.DiskInMB, err = parseMegabytes(disk); err != nil {
					return err
				}
			}
			app, err := s.app(ctx, args[0])
			if err != nil {
				return err
			}
			s.out("Creating task for app %s in %s...\n", app.Name, s.where())
			if wait {
				return s.runTaskAndWait(ctx, app, req)
			}
			t, err := s.c.CreateTask(ctx, app.GUID, req)
			if err != nil {
				return noDropletHint(err, app)
			}
			s.taskSubmitted(t)
			return nil
		})
	cmd.Args = cobra.RangeArgs(1, 2)
	cmd.Flags().StringVarP(&command, "command", "c", "", "the command to run")
	cmd.Flags().StringVar(&name, "name", "", "the task's name (default: 8 random hex digits)")
	cmd.Flags().StringVarP(&memory, "memory", "m", "", "memory limit (e.g. 256M, 1G; default: the web process's)")
	cmd.Flags().StringVarP(&disk, "disk", "k", "", "disk limit (e.g. 512M, 1G; default: the web process's)")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "show the task's output and wait for it to finish; fail if it fails")
	return cmd
}

func (s *session) taskSubmitted(t *api.Task) {
	s.out("Task has been submitted successfully for execution.\nOK\n\ntask name:   %s\ntask id:     %d\n", t.Name, t.SequenceID)
}

// randomTaskName is a default task name, as the server would choose one;
// --wait needs to know it before the task exists, to follow its output.
func randomTaskName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// runTaskAndWait runs a task while printing its output, and returns an
// error when it fails.
func (s *session) runTaskAndWait(ctx context.Context, app *api.App, req api.TaskRequest) error {
	if req.Name == "" {
		req.Name = randomTaskName()
	}
	source := "APP/TASK/" + req.Name
	filter := []string{source}
	if strings.Contains(req.Name, ",") {
		filter = []string{"APP/TASK"} // the filter is a comma-separated list
	}
	f := s.follow(ctx, app, filter, func(l api.LogLine) bool {
		// Not another task's, nor one whose name extends this one.
		return l.SourceType == source || l.SourceType == logSourceLoss
	})
	defer f.stop()
	// Create the task once the stream is open, so no line is missed.
	if err := f.waitOpen(ctx, "the task's output"); err != nil {
		return err
	}

	t, err := s.c.CreateTask(ctx, app.GUID, req)
	if err != nil {
		return noDropletHint(err, app)
	}
	s.taskSubmitted(t)
	s.out("\nWaiting for task to complete execution...\n\n")
	type result struct {
		t   *api.Task
		err error
	}
	taskDone := make(chan result, 1)
	go func() {
		t, err := s.c.AwaitTask(ctx, t.GUID)
		taskDone <- result{t, err}
	}()
	var res result
wait:
	for {
		select {
		case l := <-f.lines:
			s.out("%s\n", s.formatLogLine(l))
		case res = <-taskDone:
			break wait
		case err := <-f.done:
			f.end(ctx, err, "the task's output was interrupted")
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for task %s (id %d), which keeps running: 'pando terminate-task %s %d' stops it",
				t.Name, t.SequenceID, app.Name, t.SequenceID)
		}
	}
	if res.err != nil {
		return res.err
	}
	f.drain(ctx, func(l api.LogLine) { s.out("%s\n", s.formatLogLine(l)) })
	if res.t.State == "FAILED" {
		reason := res.t.FailureReason()
		if reason == "" {
			reason = "no reason given"
		}
		s.errf("\nTask has failed.\n")
		return fmt.Errorf("task %s (id %d) failed: %s", res.t.Name, res.t.SequenceID, reason)
	}
	s.out("\nTask has completed successfully.\nOK\n")
	return nil
}

func (e *env) tasksCmd() *cobra.Command {
	return e.appVerb("tasks NAME", "List an app's tasks, newest first", 1,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			s.out("Getting tasks for app %s in %s...\n\n", app.Name, s.where())
			tasks, err := s.c.AppTasks(ctx, app.GUID)
			if err != nil {
				return err
			}
			if len(tasks) == 0 {
				s.out("No tasks found.\n")
				return nil
			}
			sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].SequenceID > tasks[j].SequenceID })
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "id\tname\tstate\tstart time\tcommand\n")
			for _, t := range tasks {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", t.SequenceID, t.Name, t.State,
					t.CreatedAt.In(s.loc).Format(time.RFC1123), oneLine(t.Command))
			}
			return tw.Flush()
		})
}

// oneLine keeps a multi-line command on its table row.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
}

func (e *env) terminateTaskCmd() *cobra.Command {
	return e.appCommand("terminate-task NAME TASK_ID", "Stop a running task (TASK_ID is the id 'tasks' shows)", 2,
		func(ctx context.Context, s *session, args []string) error {
			id, err := strconv.Atoi(args[1])
			if err != nil || id < 1 {
				return fmt.Errorf("task id must be a number from 1 up, not %q ('pando tasks %s' lists them)", args[1], args[0])
			}
			app, err := s.app(ctx, args[0])
			if err != nil {
				return err
			}
			s.out("Terminating task %d of app %s in %s...\n", id, app.Name, s.where())
			t, err := s.c.TaskBySequenceID(ctx, app.GUID, id)
			if errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("task %d of app %s not found ('pando tasks %s' lists them)", id, app.Name, app.Name)
			}
			if err != nil {
				return err
			}
			if _, err := s.c.CancelTask(ctx, t.GUID); err != nil {
				return err
			}
			s.out("OK\n")
			return nil
		})
}

// noDropletHint says what CF's "Task must have a droplet. Assign current
// droplet to app." means for a Pando user: a task runs in the app's
// droplet, which a push makes.
func noDropletHint(err error, app *api.App) error {
	if api.IsStatus(err, http.StatusUnprocessableEntity) && strings.Contains(err.Error(), "must have a droplet") {
		return fmt.Errorf("%w (%s has no droplet to run the task in yet: push it, and fix its staging if that failed)", err, app.Name)
	}
	return err
}
