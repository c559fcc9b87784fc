-- reelfarm job store, PostgreSQL, schema version 1. Times are Unix epoch milliseconds.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    max_running BIGINT NOT NULL,
    -- Authoritative count of this tenant's running renders; changed in the same transaction
    -- as every transition into or out of `running`.
    running     BIGINT NOT NULL DEFAULT 0,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_hash   TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    created_ms BIGINT NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE templates (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    digest        TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    manifest_json TEXT NOT NULL,
    blob_key      TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version),
    UNIQUE (tenant_id, name, digest)
);

CREATE TABLE template_aliases (
    tenant_id TEXT NOT NULL,
    name      TEXT NOT NULL,
    alias     TEXT NOT NULL,
    version   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, alias),
    FOREIGN KEY (tenant_id, name, version) REFERENCES templates (tenant_id, name, version)
);

CREATE TABLE jobs (
    -- Submission order (FIFO).
    seq               BIGSERIAL NOT NULL UNIQUE,
    id                TEXT PRIMARY KEY NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    idempotency_key   TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    template_name     TEXT NOT NULL,
    template_version  BIGINT NOT NULL,
    template_digest   TEXT NOT NULL,
    lang              TEXT NOT NULL,
    tokens_json       TEXT NOT NULL,
    preset            TEXT NOT NULL,
    lane              BIGINT NOT NULL,
    state             TEXT NOT NULL,
    created_ms        BIGINT NOT NULL,
    updated_ms        BIGINT NOT NULL,
    finished_ms       BIGINT NOT NULL,
    started_ms        BIGINT NOT NULL DEFAULT 0,
    not_before_ms     BIGINT NOT NULL,
    deadline_ms       BIGINT NOT NULL,
    attempts          BIGINT NOT NULL,
    app_failures      BIGINT NOT NULL,
    infra_failures    BIGINT NOT NULL,
    lease_epoch       BIGINT NOT NULL,
    attempt_id        TEXT NOT NULL,
    worker_id         TEXT NOT NULL,
    lease_expires_ms  BIGINT NOT NULL,
    progress          DOUBLE PRECISION NOT NULL,
    stage             TEXT NOT NULL,
    failure_class     TEXT,
    failure_message   TEXT,
    -- The attempt whose own Fail call was applied last (a resent Fail is a duplicate).
    failed_attempt_id TEXT NOT NULL,
    warnings_json     TEXT NOT NULL,
    -- The committed output (succeeded renders), copied from `outputs` at completion.
    video_key         TEXT,
    video_bytes       BIGINT,
    video_sha256      TEXT,
    poster_key        TEXT,
    poster_bytes      BIGINT,
    poster_sha256     TEXT,
    stage_seconds_json TEXT,
    UNIQUE (tenant_id, idempotency_key)
);
-- Claim order: lane, tenant, FIFO; only queued rows are indexed.
CREATE INDEX jobs_claim ON jobs (lane, tenant_id, seq) WHERE state = 'queued';
-- Running renders by worker (heartbeats, restarts, lease sweep).
CREATE INDEX jobs_running ON jobs (worker_id) WHERE state = 'running';
-- Deadline sweep.
CREATE INDEX jobs_deadline ON jobs (deadline_ms) WHERE state IN ('queued', 'running');
-- Listing, newest first.
CREATE INDEX jobs_list ON jobs (tenant_id, created_ms, id);

CREATE TABLE outputs (
    attempt_id TEXT NOT NULL,
    artifact   TEXT NOT NULL,
    job_id     TEXT NOT NULL REFERENCES jobs (id),
    blob_key   TEXT NOT NULL,
    bytes      BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (attempt_id, artifact)
);

CREATE TABLE workers (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    boot_id           TEXT NOT NULL,
    capabilities_json TEXT NOT NULL,
    slots             BIGINT NOT NULL,
    registered_ms     BIGINT NOT NULL,
    last_seen_ms      BIGINT NOT NULL,
    draining          BIGINT NOT NULL
);
CREATE INDEX workers_name ON workers (name);

CREATE TABLE outbox (
    seq        BIGSERIAL PRIMARY KEY,
    job_id     TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX outbox_tenant ON outbox (tenant_id, seq);

-- Every transition into or out of `running` moves the tenant's count, and every transition
-- into a terminal state writes an outbox row, inside the statement that makes it. Outbox
-- inserts are serialized until commit (a transaction-scoped advisory lock, per schema) so that
-- `seq` order is commit order: a reader following `seq` never skips a row that commits later.
-- Lock key 7262012 is this one's alone (migrations lock 7262011 and, for the trigger, 7262013).
CREATE FUNCTION jobs_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.state = 'running') <> (NEW.state = 'running') THEN
        UPDATE tenants
        SET running = running + (CASE WHEN NEW.state = 'running' THEN 1 ELSE -1 END)
        WHERE id = NEW.tenant_id;
    END IF;
    IF NEW.state IN ('succeeded', 'failed', 'cancelled')
        AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled') THEN
        PERFORM pg_advisory_xact_lock(7262012, hashtext(current_schema()));
        INSERT INTO outbox (job_id, tenant_id, state, created_ms)
        VALUES (NEW.id, NEW.tenant_id, NEW.state, NEW.updated_ms);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_transition AFTER UPDATE OF state ON jobs
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION jobs_transition();
