-- +goose Up
-- What a learned strategy offered each shopper (docs/complements.md, "Metrics per offered
-- product"): a shopper in a variant whose products the complements model chooses counts as
-- cross-sold when an order holds a product they were offered, so analysis must know, per
-- shopper, which products those were.
--
-- Offers ride the exposure write path: a server stages them in the request's exposure_log row
-- (three more parallel arrays: offer_experiments[i] in offer_phases[i] offered offer_skus[i];
-- NULL when the request offered nothing new) and the merge folds them into exposure_offers.
ALTER TABLE exposure_log
    ADD COLUMN offer_experiments text[],
    ADD COLUMN offer_phases      integer[],
    ADD COLUMN offer_skus        text[];

-- One row per shopper and experiment phase: the distinct SKUs offered (skus[i] first offered at
-- offered_at[i]), in order of first offer, at most 50 (the earliest kept: the merge folds rows
-- in any order and keeps the same 50). A product counts for cross-sell only in orders at or
-- after it was first offered.
CREATE TABLE exposure_offers (
    experiment_key text NOT NULL,
    phase          integer NOT NULL,
    shopper_id     text NOT NULL,
    skus           text[] NOT NULL CHECK (cardinality(skus) BETWEEN 1 AND 50),
    offered_at     timestamptz[] NOT NULL CHECK (cardinality(offered_at) = cardinality(skus)),
    PRIMARY KEY (experiment_key, phase, shopper_id)
);

-- A new offer may change a shopper's cross-sell: their rollup rows are computed again, like
-- after a new exposure.
CREATE TRIGGER analysis_rollup_queue_offers_insert AFTER INSERT ON exposure_offers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_rollup_queue_exposures();
CREATE TRIGGER analysis_rollup_queue_offers_update AFTER UPDATE ON exposure_offers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_rollup_queue_exposures();

-- Offered products the recorder could not keep, counted with the exposures' losses (same key;
-- lost counts exposures, offers_lost offered products), so that a report of a learned arm says
-- when its cross-sell may be undercounted.
ALTER TABLE exposure_losses
    ADD COLUMN offers_lost bigint NOT NULL DEFAULT 0,
    DROP CONSTRAINT exposure_losses_lost_check,
    ADD CONSTRAINT exposure_losses_counts_check CHECK (lost >= 0 AND offers_lost >= 0 AND lost + offers_lost > 0);

-- +goose Down
DELETE FROM exposure_losses WHERE lost = 0;
ALTER TABLE exposure_losses
    DROP CONSTRAINT exposure_losses_counts_check,
    DROP COLUMN offers_lost,
    ADD CONSTRAINT exposure_losses_lost_check CHECK (lost > 0);
DROP TRIGGER analysis_rollup_queue_offers_update ON exposure_offers;
DROP TRIGGER analysis_rollup_queue_offers_insert ON exposure_offers;
DROP TABLE exposure_offers;
ALTER TABLE exposure_log
    DROP COLUMN offer_skus,
    DROP COLUMN offer_phases,
    DROP COLUMN offer_experiments;
