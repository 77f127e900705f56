-- CF tasks (cf run-task): one-off commands in an app's droplet.
CREATE TABLE app_tasks (
    guid           TEXT PRIMARY KEY,
    seq            BIGINT NOT NULL,
    app_guid       TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    command        TEXT NOT NULL,
    state          TEXT NOT NULL,
    sequence_id    BIGINT NOT NULL,
    memory_mb      BIGINT NOT NULL,
    disk_mb        BIGINT NOT NULL,
    droplet_guid   TEXT NOT NULL,
    failure_reason TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (app_guid, sequence_id)
);
CREATE INDEX app_tasks_seq ON app_tasks (seq);
CREATE INDEX app_tasks_app ON app_tasks (app_guid);
CREATE INDEX app_tasks_state ON app_tasks (state);
