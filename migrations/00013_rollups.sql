-- +goose Up
-- Report rollups (internal/analysis, rollup.go): the figures a report needs, kept up to date by
-- a background job as events arrive, so that a report reads a few rows per variant and day
-- instead of every event. The events, order lines, ledger and exposures stay the truth: a
-- shopper's row is always computed again whole from them (never adjusted by what one event
-- changed), and a report reads from them directly every shopper whose row may be behind.

-- One row per exposure: the shopper's figures of SPEC §6 from first exposure up to the phase's
-- end as known when the row was computed (pre_revenue: the 14 days before first exposure, for
-- CUPED). state says whether the shopper is a unit of the phase's report ('unit'), was seen in
-- two variants ('multiple') or was first exposed after the phase ended ('late'); only units
-- have figures. cost and net are computed with the point value in analysis_rollup_state.
CREATE TABLE analysis_rollups (
    experiment_key   text NOT NULL,
    phase            integer NOT NULL,
    shopper_id       text NOT NULL,
    variant          text NOT NULL,
    first_seen       timestamptz NOT NULL,
    state            text NOT NULL CHECK (state IN ('unit', 'multiple', 'late')),
    orders           bigint NOT NULL,
    cross_sell       boolean NOT NULL, -- an order held one of the experiment's target_products
    refunded         boolean NOT NULL,
    revenue          bigint NOT NULL,  -- order amounts − refunds, minor units
    discount         bigint NOT NULL,
    bonus_points     bigint NOT NULL,  -- loyalty_points bonus the experiment's variant paid
    cost             bigint NOT NULL,  -- discount + bonus_points × point value
    net              bigint NOT NULL,  -- revenue − cost
    pre_revenue      bigint NOT NULL,
    currency_min     char(3),
    currency_max     char(3),
    pre_currency_min char(3),
    pre_currency_max char(3),
    last_at          timestamptz,      -- the latest time counted after first exposure
    PRIMARY KEY (experiment_key, phase, shopper_id)
);
-- The largest and smallest values, for the percentiles that cap them; zeros, most shoppers'
-- values, are counted in analysis_rollup_groups instead.
CREATE INDEX analysis_rollups_revenue ON analysis_rollups (experiment_key, phase, revenue) WHERE revenue <> 0;
CREATE INDEX analysis_rollups_cost ON analysis_rollups (experiment_key, phase, cost) WHERE cost <> 0;
CREATE INDEX analysis_rollups_net ON analysis_rollups (experiment_key, phase, net) WHERE net <> 0;
CREATE INDEX analysis_rollups_pre ON analysis_rollups (experiment_key, phase, pre_revenue) WHERE pre_revenue <> 0;

-- The sums of the rows above per experiment, phase, state, variant and day of first exposure:
-- every sum a report needs of the uncapped values, exact (numeric), so that a report reads
-- these and corrects them only for the shoppers it caps or reads from events. Currencies are
-- the smallest and largest among the group's rows.
CREATE TABLE analysis_rollup_groups (
    experiment_key   text NOT NULL,
    phase            integer NOT NULL,
    state            text NOT NULL,
    variant          text NOT NULL,
    day              date NOT NULL,
    units            bigint NOT NULL,
    cross_sell       bigint NOT NULL,
    converted        bigint NOT NULL,
    refunded         bigint NOT NULL,
    orders           numeric NOT NULL,
    orders_sq        numeric NOT NULL,
    revenue          numeric NOT NULL,
    revenue_sq       numeric NOT NULL,
    revenue_cu       numeric NOT NULL,
    revenue_nz       bigint NOT NULL,
    revenue_orders   numeric NOT NULL,
    cost             numeric NOT NULL,
    cost_sq          numeric NOT NULL,
    cost_cu          numeric NOT NULL,
    cost_nz          bigint NOT NULL,
    net              numeric NOT NULL,
    net_sq           numeric NOT NULL,
    net_cu           numeric NOT NULL,
    net_nz           bigint NOT NULL,
    pre              numeric NOT NULL,
    pre_sq           numeric NOT NULL,
    pre_nz           bigint NOT NULL,
    revenue_pre      numeric NOT NULL,
    cost_pre         numeric NOT NULL,
    net_pre          numeric NOT NULL,
    currency_min     char(3),
    currency_max     char(3),
    pre_currency_min char(3),
    pre_currency_max char(3),
    PRIMARY KEY (experiment_key, phase, state, variant, day)
);

-- The job's own state: how far it has read the events outbox (events.seq, as loyalty's
-- crediting does), the point value cost and net were computed with, and when it last
-- computed rows: every row counts only times before then, or is in analysis_rollup_due, so a
-- window ending at or after it can trust them.
CREATE TABLE analysis_rollup_state (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq         bigint NOT NULL DEFAULT 0,
    point_value bigint,
    computed_at timestamptz
);
INSERT INTO analysis_rollup_state DEFAULT VALUES;

-- Rows that count something at or after the time they were computed (an event dated in the
-- future, an exposure stamped by a clock ahead): a report whose window ends at or before `at`
-- reads the shopper from events. Shoppers the database refused to write stay here at infinity.
CREATE TABLE analysis_rollup_due (
    experiment_key text NOT NULL,
    phase          integer NOT NULL,
    shopper_id     text NOT NULL,
    at             timestamptz NOT NULL,
    PRIMARY KEY (experiment_key, phase, shopper_id)
);

-- Shoppers with an order, refund or bonus entry the job has read: only their rows need their
-- events read; a new exposure of anyone else is a row of zeros (their orders are still ahead).
CREATE TABLE analysis_rollup_shoppers (
    shopper_id text PRIMARY KEY
);

-- The end each ended phase's rows are clipped at: a phase whose end is not here yet has rows
-- that may count past it, which the job clips, and which reports meanwhile do not trust.
CREATE TABLE analysis_rollup_phases (
    experiment_key text NOT NULL,
    phase          integer NOT NULL,
    ended_at       timestamptz NOT NULL,
    PRIMARY KEY (experiment_key, phase)
);

-- Shoppers whose rows a write other than an event changed: an exposure written or flagged as
-- seen in two variants, a ledger entry of an experiment's bonus or a reversal. Filled by the
-- statement triggers below, one row per statement, in the writer's transaction, and emptied
-- by the job. Exposures and ledger entries have several writers whose ids do not commit in
-- order, so a cursor over them could skip a row; this queue cannot.
CREATE TABLE analysis_rollup_queue (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source   text NOT NULL CHECK (source IN ('exposures', 'loyalty')),
    shoppers text[] NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- +goose StatementBegin
CREATE FUNCTION analysis_rollup_queue_exposures() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analysis_rollup_queue (source, shoppers)
    SELECT 'exposures', array_agg(DISTINCT shopper_id) FROM new_rows HAVING count(*) > 0;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER analysis_rollup_queue_insert AFTER INSERT ON exposures
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_rollup_queue_exposures();
CREATE TRIGGER analysis_rollup_queue_update AFTER UPDATE ON exposures
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_rollup_queue_exposures();

-- +goose StatementBegin
CREATE FUNCTION analysis_rollup_queue_loyalty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analysis_rollup_queue (source, shoppers)
    SELECT 'loyalty', array_agg(DISTINCT shopper_id) FROM new_rows
    WHERE experiment IS NOT NULL OR reverses IS NOT NULL HAVING count(*) > 0;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER analysis_rollup_queue AFTER INSERT ON loyalty_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_rollup_queue_loyalty();

-- +goose Down
DROP TRIGGER analysis_rollup_queue ON loyalty_entries;
DROP TRIGGER analysis_rollup_queue_update ON exposures;
DROP TRIGGER analysis_rollup_queue_insert ON exposures;
DROP FUNCTION analysis_rollup_queue_loyalty();
DROP FUNCTION analysis_rollup_queue_exposures();
DROP TABLE analysis_rollup_queue;
DROP TABLE analysis_rollup_phases;
DROP TABLE analysis_rollup_shoppers;
DROP TABLE analysis_rollup_due;
DROP TABLE analysis_rollup_state;
DROP TABLE analysis_rollup_groups;
DROP TABLE analysis_rollups;
