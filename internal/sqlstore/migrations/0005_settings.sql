-- Platform settings and usage records: feature flags an admin set (the
-- API knows the defaults), the running and staging environment variable
-- groups, and app usage events.
CREATE TABLE feature_flags (
    name                 TEXT PRIMARY KEY,
    enabled              BOOLEAN NOT NULL,
    custom_error_message TEXT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE env_groups (
    name       TEXT PRIMARY KEY,
    vars       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- data is the event as JSON (pando.AppUsageEvent); seq orders events
-- recorded in the same nanosecond and anchors after_guid.
CREATE TABLE app_usage_events (
    guid       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX app_usage_events_seq ON app_usage_events (seq);
CREATE INDEX app_usage_events_created ON app_usage_events (created_at);
