-- +goose NO TRANSACTION
-- +goose Up
-- A segment report from the rollups (issue 22): each rollup row keeps its exposure's targeting
-- attributes, so that a report by segment reads the rows alone instead of joining every
-- exposure of the phase for the attribute. Exposures' attributes are written once, with the
-- first exposure, and the job copies them whenever it computes a row.
-- Outside a transaction: the column comes at once (a constant default rewrites nothing) and
-- its lock goes with it, so that filling the rows of a large table holds row locks only and
-- reports go on reading meanwhile. Run again after a failed fill, it adds nothing twice.
ALTER TABLE analysis_rollups ADD COLUMN IF NOT EXISTS attributes jsonb NOT NULL DEFAULT '{}';
UPDATE analysis_rollups r SET attributes = x.attributes FROM exposures x
WHERE x.experiment_key = r.experiment_key AND x.phase = r.phase AND x.shopper_id = r.shopper_id
  AND x.attributes <> '{}';

-- +goose Down
ALTER TABLE analysis_rollups DROP COLUMN attributes;
