-- +goose Up
-- The first time a shopper was put in a variant of an experiment's phase. Written in batches
-- off the request path; only the first row per (experiment, phase, shopper) counts, and a later
-- sighting in another variant (a changed hash attribute, a forced override) flags the shopper so
-- that analysis leaves them out.
CREATE TABLE exposures (
    experiment_key    text NOT NULL,
    phase             integer NOT NULL,
    shopper_id        text NOT NULL,
    variant           text NOT NULL,
    attributes        jsonb NOT NULL DEFAULT '{}',
    first_seen        timestamptz NOT NULL,
    multiple_variants boolean NOT NULL DEFAULT false,
    PRIMARY KEY (experiment_key, phase, shopper_id)
);
CREATE INDEX exposures_shopper ON exposures (shopper_id);

-- +goose Down
DROP TABLE exposures;
