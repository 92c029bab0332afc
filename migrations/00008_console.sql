-- +goose Up
-- The web console (internal/console) and the results snapshots it reads (internal/results).

-- Console sessions, shared by every server. The cookie holds only a random id; the table keeps
-- its SHA-256, so that reading the table does not give anyone a session. The key a session was
-- opened with is named (role and name), never stored: a key removed from XSELL_API_KEYS ends its
-- sessions at their next request.
CREATE TABLE console_sessions (
    id_hash      bytea PRIMARY KEY,
    role         text NOT NULL CHECK (role IN ('admin', 'analyst')),
    key_name     text NOT NULL,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Experiment reports computed in the background (on a schedule and on request), so that a
-- page shows them at once whatever the data size. Every snapshot is kept for a week, then
-- the last of each day (see internal/results). A report that could not be computed (no
-- exposures yet) is a snapshot too, with its error, so the page can say why.
CREATE TABLE results_snapshots (
    id             bigserial PRIMARY KEY,
    experiment_key text NOT NULL,
    phase          integer NOT NULL,
    computed_at    timestamptz NOT NULL,
    duration_ms    integer NOT NULL,
    -- The few figures the experiments list shows, so that it never reads whole reports.
    summary        jsonb NOT NULL DEFAULT '{}',
    report         jsonb,
    error          text,
    CHECK ((report IS NULL) <> (error IS NULL))
);
CREATE INDEX results_snapshots_latest ON results_snapshots (experiment_key, computed_at DESC);

-- "Refresh now": the newest request per experiment; a snapshot computed after it answers it.
CREATE TABLE results_requests (
    experiment_key text PRIMARY KEY,
    requested_at   timestamptz NOT NULL,
    requested_by   text NOT NULL
);

-- Product affinity (bundle ideas), computed in the background like the reports.
CREATE TABLE affinity_snapshots (
    id          bigserial PRIMARY KEY,
    computed_at timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    result      jsonb,
    error       text,
    CHECK ((result IS NULL) <> (error IS NULL))
);
CREATE INDEX affinity_snapshots_latest ON affinity_snapshots (computed_at DESC);

-- +goose Down
DROP TABLE affinity_snapshots;
DROP TABLE results_requests;
DROP TABLE results_snapshots;
DROP TABLE console_sessions;
