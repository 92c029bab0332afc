-- +goose Up
-- A segment report from the rollups (issue 22): each rollup row keeps its exposure's targeting
-- attributes, so that a report by segment reads the rows alone instead of joining every
-- exposure of the phase for the attribute. Exposures' attributes are written once, with the
-- first exposure, and the job copies them whenever it computes a row.
ALTER TABLE analysis_rollups ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';
UPDATE analysis_rollups r SET attributes = x.attributes FROM exposures x
WHERE x.experiment_key = r.experiment_key AND x.phase = r.phase AND x.shopper_id = r.shopper_id
  AND x.attributes <> '{}';

-- +goose Down
ALTER TABLE analysis_rollups DROP COLUMN attributes;
