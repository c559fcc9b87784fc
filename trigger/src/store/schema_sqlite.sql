-- reelfarm trigger store, SQLite, schema version 1. Times are Unix epoch milliseconds;
-- `tenant` is the tenant's name.

-- Every stored version of every campaign.
CREATE TABLE campaign_versions (
    tenant        TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    campaign_json TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (tenant, name, version)
);

-- One row per campaign: its newest version (the one in force) and whether it is active.
CREATE TABLE campaigns (
    tenant     TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, name)
);
CREATE INDEX campaigns_by_event_type ON campaigns (tenant, event_type);

-- Ingested events; `processed_ms` is NULL until their outcomes are recorded.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    tenant       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    raw_json     TEXT NOT NULL,
    event_json   TEXT NOT NULL,
    received_ms  INTEGER NOT NULL,
    processed_ms INTEGER,
    UNIQUE (tenant, event_id)
);
CREATE INDEX events_unprocessed ON events (seq) WHERE processed_ms IS NULL;

-- Customers held out of a campaign.
CREATE TABLE holdouts (
    tenant      TEXT NOT NULL,
    campaign    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant, campaign, customer_id)
);

-- Renders to request. `scheduled_ms` is the customer touch (frequency caps); `due_ms` the
-- next submission try. State: pending → submitted | failed.
CREATE TABLE dispatches (
    key            TEXT PRIMARY KEY NOT NULL,
    tenant         TEXT NOT NULL,
    campaign       TEXT NOT NULL,
    version        INTEGER NOT NULL,
    variant        TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    template       TEXT NOT NULL,
    lang           TEXT NOT NULL,
    tokens_json    TEXT NOT NULL,
    scheduled_ms   INTEGER NOT NULL,
    due_ms         INTEGER NOT NULL,
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    render_id      TEXT,
    last_error     TEXT NOT NULL DEFAULT '',
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL
);
CREATE INDEX dispatches_due ON dispatches (due_ms) WHERE state = 'pending';
CREATE INDEX dispatches_touches ON dispatches (tenant, customer_id, scheduled_ms);
CREATE UNIQUE INDEX dispatches_render ON dispatches (render_id) WHERE render_id IS NOT NULL;

-- The webhook outbox. State: pending → done | dead (→ pending on replay).
CREATE TABLE deliveries (
    id             TEXT PRIMARY KEY NOT NULL,
    dispatch_key   TEXT NOT NULL,
    tenant         TEXT NOT NULL,
    campaign       TEXT NOT NULL,
    variant        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    url            TEXT NOT NULL,
    payload_json   TEXT NOT NULL,
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    due_ms         INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT NOT NULL DEFAULT '',
    status_code    INTEGER NOT NULL DEFAULT 0,
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL,
    UNIQUE (dispatch_key, kind)
);
CREATE INDEX deliveries_due ON deliveries (due_ms) WHERE state = 'pending';
CREATE INDEX deliveries_dead ON deliveries (tenant, updated_ms) WHERE state = 'dead';

-- Per-tenant cursor over the coordinator's render events.
CREATE TABLE cursors (
    tenant TEXT PRIMARY KEY NOT NULL,
    seq    INTEGER NOT NULL
);

-- Counters per campaign and variant ('*': no known variant).
CREATE TABLE stats (
    tenant   TEXT NOT NULL,
    campaign TEXT NOT NULL,
    variant  TEXT NOT NULL,
    counter  TEXT NOT NULL,
    value    INTEGER NOT NULL,
    PRIMARY KEY (tenant, campaign, variant, counter)
);
