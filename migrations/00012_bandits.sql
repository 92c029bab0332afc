-- +goose Up
-- Bandits (SPEC §3a, docs/bandits.md). An experiment's allocation: {"type": "fixed"}, or a
-- bandit's settings, validated in Go (internal/experiments, allocation.go).
ALTER TABLE experiments ADD COLUMN allocation jsonb NOT NULL DEFAULT '{"type": "fixed"}';

-- Every scheduled update of a bandit: the weights in force after it, by variant key, and the
-- posterior summary per arm they came from. An update that moved the weights starts a period of
-- the phase (period 1, 2, ...; period 0 is the burn-in at the phase's own weights, in
-- experiment_phases); one that held them (too little data yet) has no period and says why.
-- Analysis compares the arms period by period, and SRM checks each period's weights.
CREATE TABLE bandit_updates (
    id             bigserial PRIMARY KEY,
    experiment_key text NOT NULL REFERENCES experiments (key) ON DELETE CASCADE,
    phase          integer NOT NULL,
    period         integer CHECK (period >= 1),
    at             timestamptz NOT NULL,
    weights        jsonb NOT NULL,
    arms           jsonb NOT NULL DEFAULT '[]',
    note           text NOT NULL DEFAULT '',
    UNIQUE (experiment_key, phase, period)
);
CREATE INDEX bandit_updates_phase ON bandit_updates (experiment_key, phase, at);

-- +goose Down
DROP TABLE bandit_updates;
ALTER TABLE experiments DROP COLUMN allocation;
