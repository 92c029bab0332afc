-- +goose Up
-- The exposure write path (docs/assignment.md, "Exposures"). A server stages each assignment
-- request's exposures as one compact row, COPYed in groups, and merges staged rows into
-- exposures in the background: staging keeps up with assignment on new shoppers, where
-- writing each exposure's row at once could not, and exposures keeps the shape analysis reads.
-- Arrays are parallel: experiments[i] in phases[i] put the shopper in variants[i].
-- A queue: every row is deleted by the merge soon after it is written, so autovacuum is told
-- to clean it after every 10,000 dead rows rather than when a fifth of the table is dead,
-- which for a queue that empties is never soon enough.
CREATE TABLE exposure_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shopper_id  text NOT NULL,
    at          timestamptz NOT NULL,
    attributes  jsonb NOT NULL,
    experiments text[] NOT NULL,
    phases      integer[] NOT NULL,
    variants    text[] NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);

-- Exposures that could not be kept, per experiment, phase, variant, hour of the exposure and
-- reason (queue_full, shutdown, quarantined), so that a report can say what its window lost.
CREATE TABLE exposure_losses (
    experiment_key text NOT NULL,
    phase          integer NOT NULL,
    variant        text NOT NULL,
    hour           timestamptz NOT NULL,
    reason         text NOT NULL,
    lost           bigint NOT NULL CHECK (lost > 0),
    PRIMARY KEY (experiment_key, phase, variant, hour, reason)
);

-- +goose Down
DROP TABLE exposure_losses;
DROP TABLE exposure_log;
