-- 0008_services: user-provided service instances and their credential
-- bindings. credentials is sealed by the API (never stored in the clear).
-- Deleting a space deletes its instances; deleting an app or an instance
-- deletes its bindings. A binding is pinned when its app (re)starts: the
-- running revision's VCAP_SERVICES holds the pinned ones. Unbinding a
-- pinned binding only sets unbound_at (it stays in the running env until
-- the next start, which deletes it), so live bindings have unbound_at 0.
CREATE TABLE service_instances (
    guid              TEXT PRIMARY KEY,
    seq               BIGINT NOT NULL,
    name              TEXT NOT NULL,
    space_guid        TEXT NOT NULL REFERENCES spaces (guid) ON DELETE CASCADE,
    type              TEXT NOT NULL,
    credentials       TEXT NOT NULL,
    syslog_drain_url  TEXT NOT NULL,
    route_service_url TEXT NOT NULL,
    tags              TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (space_guid, name)
);
CREATE INDEX service_instances_seq ON service_instances (seq);
CREATE TABLE service_bindings (
    guid          TEXT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    type          TEXT NOT NULL,
    name          TEXT NOT NULL,
    app_guid      TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    instance_guid TEXT NOT NULL REFERENCES service_instances (guid) ON DELETE CASCADE,
    pinned        INTEGER NOT NULL DEFAULT 0,
    unbound_at    BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (app_guid, instance_guid, unbound_at)
);
CREATE INDEX service_bindings_seq ON service_bindings (seq);
CREATE INDEX service_bindings_app ON service_bindings (app_guid);
