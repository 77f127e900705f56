-- 0001_init: the CCDB schema. Portable SQL: TEXT, BIGINT, INTEGER and BOOLEAN
-- only; timestamps are BIGINT unix nanoseconds; JSON columns are TEXT.
-- seq is the insert order, the tie-breaker after created_at in every list.

CREATE TABLE orgs (
    guid       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX orgs_seq ON orgs (seq);

CREATE TABLE spaces (
    guid       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    name       TEXT NOT NULL,
    org_guid   TEXT NOT NULL REFERENCES orgs (guid),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_guid, name)
);
CREATE INDEX spaces_seq ON spaces (seq);

CREATE TABLE apps (
    guid           TEXT PRIMARY KEY,
    seq            BIGINT NOT NULL,
    name           TEXT NOT NULL,
    space_guid     TEXT NOT NULL REFERENCES spaces (guid),
    state          TEXT NOT NULL,
    lifecycle_type TEXT NOT NULL,
    buildpacks     TEXT NOT NULL,
    stack          TEXT NOT NULL,
    env_vars       TEXT NOT NULL,
    droplet_guid   TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (space_guid, name)
);
CREATE INDEX apps_seq ON apps (seq);
CREATE INDEX apps_name ON apps (name);

CREATE TABLE processes (
    guid                            TEXT PRIMARY KEY,
    seq                             BIGINT NOT NULL,
    app_guid                        TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    type                            TEXT NOT NULL,
    command                         TEXT NOT NULL,
    instances                       INTEGER NOT NULL,
    memory_mb                       INTEGER NOT NULL,
    disk_mb                         INTEGER NOT NULL,
    log_rate_limit_bytes            BIGINT NOT NULL,
    health_check_type               TEXT NOT NULL,
    health_check_endpoint           TEXT NOT NULL,
    health_check_timeout            INTEGER NOT NULL,
    health_check_invocation_timeout INTEGER NOT NULL,
    created_at                      BIGINT NOT NULL,
    updated_at                      BIGINT NOT NULL,
    UNIQUE (app_guid, type)
);
CREATE INDEX processes_seq ON processes (seq);

CREATE TABLE packages (
    guid            TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL,
    app_guid        TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    type            TEXT NOT NULL,
    state           TEXT NOT NULL,
    sha1            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            BIGINT NOT NULL,
    error           TEXT NOT NULL,
    docker_image    TEXT NOT NULL,
    docker_username TEXT NOT NULL,
    docker_password TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX packages_seq ON packages (seq);
CREATE INDEX packages_app ON packages (app_guid);

CREATE TABLE builds (
    guid              TEXT PRIMARY KEY,
    seq               BIGINT NOT NULL,
    app_guid          TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    package_guid      TEXT NOT NULL,
    state             TEXT NOT NULL,
    error             TEXT NOT NULL,
    droplet_guid      TEXT NOT NULL,
    lifecycle_type    TEXT NOT NULL,
    buildpacks        TEXT NOT NULL,
    stack             TEXT NOT NULL,
    staging_memory_mb INTEGER NOT NULL,
    staging_disk_mb   INTEGER NOT NULL,
    created_by_guid   TEXT NOT NULL,
    created_by_name   TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX builds_seq ON builds (seq);
CREATE INDEX builds_app ON builds (app_guid);
CREATE INDEX builds_state ON builds (state);

CREATE TABLE droplets (
    guid               TEXT PRIMARY KEY,
    seq                BIGINT NOT NULL,
    app_guid           TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    package_guid       TEXT NOT NULL,
    state              TEXT NOT NULL,
    error              TEXT NOT NULL,
    lifecycle_type     TEXT NOT NULL,
    process_types      TEXT NOT NULL,
    execution_metadata TEXT NOT NULL,
    detected_buildpack TEXT NOT NULL,
    buildpack_name     TEXT NOT NULL,
    buildpack_version  TEXT NOT NULL,
    stack              TEXT NOT NULL,
    image              TEXT NOT NULL,
    sha1               TEXT NOT NULL,
    sha256             TEXT NOT NULL,
    size               BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX droplets_seq ON droplets (seq);
CREATE INDEX droplets_app ON droplets (app_guid);

CREATE TABLE domains (
    guid       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    internal   BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX domains_seq ON domains (seq);

CREATE TABLE routes (
    guid        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    host        TEXT NOT NULL,
    path        TEXT NOT NULL,
    domain_guid TEXT NOT NULL REFERENCES domains (guid),
    space_guid  TEXT NOT NULL REFERENCES spaces (guid),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (host, domain_guid, path)
);
CREATE INDEX routes_seq ON routes (seq);
CREATE INDEX routes_space ON routes (space_guid);

CREATE TABLE route_destinations (
    guid         TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL,
    route_guid   TEXT NOT NULL REFERENCES routes (guid) ON DELETE CASCADE,
    app_guid     TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    process_type TEXT NOT NULL,
    port         INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (route_guid, app_guid, process_type)
);
CREATE INDEX route_destinations_seq ON route_destinations (seq);
CREATE INDEX route_destinations_app ON route_destinations (app_guid);

CREATE TABLE buildpacks (
    guid       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    name       TEXT NOT NULL,
    stack      TEXT NOT NULL,
    position   INTEGER NOT NULL,
    enabled    BOOLEAN NOT NULL,
    locked     BOOLEAN NOT NULL,
    state      TEXT NOT NULL,
    filename   TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (name, stack)
);
CREATE INDEX buildpacks_seq ON buildpacks (seq);

CREATE TABLE stacks (
    guid        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    is_default  BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX stacks_seq ON stacks (seq);

-- Events outlive their targets (no foreign keys): audit history stays.
CREATE TABLE events (
    guid        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    type        TEXT NOT NULL,
    actor_guid  TEXT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    target_guid TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_name TEXT NOT NULL,
    space_guid  TEXT NOT NULL,
    org_guid    TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_created ON events (created_at, seq);
CREATE INDEX events_target ON events (target_guid, created_at);
CREATE INDEX events_space ON events (space_guid, created_at);

CREATE TABLE users (
    guid          TEXT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    admin         BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX users_seq ON users (seq);

CREATE TABLE jobs (
    guid          TEXT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    operation     TEXT NOT NULL,
    state         TEXT NOT NULL,
    errors        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_guid TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX jobs_seq ON jobs (seq);
