-- +goose Up
-- Experiments: the definition growth teams edit. Strategies, targeting and layers are JSONB
-- because their shape is validated in Go and read whole by the assignment cache.
CREATE TABLE experiments (
    key             text PRIMARY KEY,
    name            text NOT NULL,
    hypothesis      text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('draft', 'running', 'paused', 'stopped')),
    phase           integer NOT NULL DEFAULT 1 CHECK (phase >= 1),
    seed            text NOT NULL,
    hash_attribute  text NOT NULL,
    coverage        double precision NOT NULL CHECK (coverage > 0 AND coverage <= 1),
    variants        jsonb NOT NULL,
    targeting       jsonb,
    layer           jsonb,
    target_products jsonb NOT NULL DEFAULT '[]',
    metrics         jsonb NOT NULL DEFAULT '{}',
    forced          jsonb NOT NULL DEFAULT '{}',
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    stopped_at      timestamptz
);
CREATE INDEX experiments_status ON experiments (status);

-- One row per phase: the allocation in force and its analysis window.
CREATE TABLE experiment_phases (
    experiment_key text NOT NULL REFERENCES experiments (key) ON DELETE CASCADE,
    phase          integer NOT NULL,
    seed           text NOT NULL,
    coverage       double precision NOT NULL,
    variants       jsonb NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    PRIMARY KEY (experiment_key, phase)
);

-- The audit log outlives the experiment (a deleted draft keeps its history), so no foreign key.
CREATE TABLE experiment_audit (
    id             bigserial PRIMARY KEY,
    experiment_key text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    action         text NOT NULL,
    actor_role     text NOT NULL,
    actor_name     text NOT NULL,
    version        integer NOT NULL,
    changes        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX experiment_audit_key ON experiment_audit (experiment_key, id);

-- +goose Down
DROP TABLE experiment_audit;
DROP TABLE experiment_phases;
DROP TABLE experiments;
