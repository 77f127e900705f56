package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Task is a CF task (run-task).
type Task struct {
	GUID        string `json:"guid"`
	SequenceID  int    `json:"sequence_id"`
	Name        string `json:"name"`
	Command     string `json:"command"`
	State       string `json:"state"`
	MemoryInMB  int    `json:"memory_in_mb"`
	DiskInMB    int    `json:"disk_in_mb"`
	DropletGUID string `json:"droplet_guid"`
	Result      struct {
		FailureReason *string `json:"failure_reason"`
	} `json:"result"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Finished reports whether the task has ended (SUCCEEDED or FAILED).
func (t *Task) Finished() bool { return t.State == "SUCCEEDED" || t.State == "FAILED" }

// FailureReason returns why the task failed, or "".
func (t *Task) FailureReason() string {
	if t.Result.FailureReason == nil {
		return ""
	}
	return *t.Result.FailureReason
}

// TaskRequest is what a new task runs. Empty or zero fields take the
// server's defaults.
type TaskRequest struct {
	Command    string `json:"command"`
	Name       string `json:"name,omitempty"`
	MemoryInMB int    `json:"memory_in_mb,omitempty"`
	DiskInMB   int    `json:"disk_in_mb,omitempty"`
}

// CreateTask runs a task of an app.
func (c *Client) CreateTask(ctx context.Context, appGUID string, req TaskRequest) (*Task, error) {
	var t Task
	if _, err := c.do(ctx, http.MethodPost, "/v3/apps/"+url.PathEscape(appGUID)+"/tasks", req, &t); err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	return &t, nil
}

// AppTasks lists an app's tasks, oldest first.
func (c *Client) AppTasks(ctx context.Context, appGUID string) ([]Task, error) {
	tasks, err := list[Task](ctx, c, "/v3/apps/"+url.PathEscape(appGUID)+"/tasks?per_page=5000")
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return tasks, nil
}

// TaskBySequenceID finds an app's task by its id (`tasks` shows it). It
// answers an error wrapping ErrNotFound when there is none.
func (c *Client) TaskBySequenceID(ctx context.Context, appGUID string, id int) (*Task, error) {
	q := url.Values{"sequence_ids": {strconv.Itoa(id)}, "per_page": {"1"}}
	var p page[Task]
	if _, err := c.do(ctx, http.MethodGet, "/v3/apps/"+url.PathEscape(appGUID)+"/tasks?"+q.Encode(), nil, &p); err != nil {
		return nil, fmt.Errorf("find task %d: %w", id, err)
	}
	if len(p.Resources) == 0 {
		return nil, fmt.Errorf("task %d %w", id, ErrNotFound)
	}
	return &p.Resources[0], nil
}

// GetTask reads a task.
func (c *Client) GetTask(ctx context.Context, guid string) (*Task, error) {
	var t Task
	if _, err := c.do(ctx, http.MethodGet, "/v3/tasks/"+url.PathEscape(guid), nil, &t); err != nil {
		return nil, fmt.Errorf("read task: %w", err)
	}
	return &t, nil
}

// CancelTask asks the server to stop a task.
func (c *Client) CancelTask(ctx context.Context, guid string) (*Task, error) {
	var t Task
	if _, err := c.do(ctx, http.MethodPost, "/v3/tasks/"+url.PathEscape(guid)+"/actions/cancel", nil, &t); err != nil {
		return nil, fmt.Errorf("cancel task: %w", err)
	}
	return &t, nil
}

// AwaitTask waits until a task has finished, long-polling Pando's
// /pando/v1/tasks endpoint, or polling /v3/tasks on servers without it.
func (c *Client) AwaitTask(ctx context.Context, guid string) (*Task, error) {
	const wait = 30 * time.Second
	for {
		var t Task
		_, err := c.doRequest(ctx, request{
			method:  http.MethodGet,
			url:     "/pando/v1/tasks/" + url.PathEscape(guid) + "?wait=" + wait.String(),
			timeout: wait + 30*time.Second,
		}, &t)
		if IsNotFound(err) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("wait for task: %w", err)
		}
		if t.Finished() {
			return &t, nil
		}
	}
	bo := c.backoff()
	for {
		t, err := c.GetTask(ctx, guid)
		if err != nil {
			return nil, err
		}
		if t.Finished() {
			return t, nil
		}
		if err := bo.wait(ctx); err != nil {
			return nil, err
		}
	}
}
