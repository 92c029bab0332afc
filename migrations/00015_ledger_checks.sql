-- +goose Up
-- The ledger's references checked once per statement instead of once per row (issue 22).
--
-- A foreign key checks each inserted row with a query of its own (an index probe and a row
-- lock on the referenced row, through a trigger call per row): crediting a batch of orders
-- writes an entry, a lot and a move per earn, six foreign keys, and those checks were most of
-- the batch's time (docs/benchmarks.md, "Loyalty crediting"). They are replaced by one check
-- per statement and table over the rows the statement inserted (a transition table), which
-- refuses the statement with SQLSTATE 23503 as a foreign key would, and checks more than the
-- keys did: an entry's reversal reverses an entry of the same shopper, a lot belongs to an earn
-- entry of its shopper, a move joins an entry and a lot of the same shopper.
--
-- What a foreign key also did, keep a referenced row from being deleted or re-keyed under its
-- references, is kept by refusing that outright: the ledger is append-only (SPEC §5), accounts
-- are never removed, and no writer changes a key.
ALTER TABLE loyalty_entries DROP CONSTRAINT loyalty_entries_shopper_id_fkey,
    DROP CONSTRAINT loyalty_entries_reverses_fkey;
ALTER TABLE loyalty_lots DROP CONSTRAINT loyalty_lots_shopper_id_fkey,
    DROP CONSTRAINT loyalty_lots_entry_id_fkey;
ALTER TABLE loyalty_lot_moves DROP CONSTRAINT loyalty_lot_moves_entry_id_fkey,
    DROP CONSTRAINT loyalty_lot_moves_lot_id_fkey;

-- Each check probes the referenced tables' indexes row by row, as a foreign key does, whatever
-- the planner's statistics say: on tables just filled and not analysed yet it would otherwise
-- pick sequential scans, one per inserted row (the functions' SET clauses).
-- +goose StatementBegin
CREATE FUNCTION loyalty_check_entries() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.shopper_id INTO bad FROM new_rows n
        WHERE NOT EXISTS (SELECT FROM loyalty_accounts a WHERE a.shopper_id = n.shopper_id)
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'loyalty entry %: shopper % has no account', bad.id, bad.shopper_id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'loyalty_entries';
    END IF;
    SELECT n.id, n.reverses INTO bad FROM new_rows n
        WHERE n.reverses IS NOT NULL AND NOT EXISTS (
            SELECT FROM loyalty_entries o WHERE o.id = n.reverses AND o.shopper_id = n.shopper_id)
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'loyalty entry %: reverses %, no entry of the same shopper', bad.id, bad.reverses
            USING ERRCODE = 'foreign_key_violation', TABLE = 'loyalty_entries';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER loyalty_check_entries AFTER INSERT ON loyalty_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION loyalty_check_entries();

-- +goose StatementBegin
CREATE FUNCTION loyalty_check_lots() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.entry_id INTO bad FROM new_rows n
        WHERE NOT EXISTS (SELECT FROM loyalty_entries e
            WHERE e.id = n.entry_id AND e.shopper_id = n.shopper_id AND e.kind = 'earn')
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'loyalty lot %: entry % is not an earn of the lot''s shopper', bad.id, bad.entry_id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'loyalty_lots';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER loyalty_check_lots AFTER INSERT ON loyalty_lots
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION loyalty_check_lots();

-- +goose StatementBegin
CREATE FUNCTION loyalty_check_moves() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.entry_id, n.lot_id INTO bad FROM new_rows n
        WHERE NOT EXISTS (SELECT FROM loyalty_entries e JOIN loyalty_lots l ON l.shopper_id = e.shopper_id
            WHERE e.id = n.entry_id AND l.id = n.lot_id)
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'loyalty move of entry % on lot %: no such entry and lot of one shopper', bad.entry_id, bad.lot_id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'loyalty_lot_moves';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER loyalty_check_moves AFTER INSERT ON loyalty_lot_moves
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION loyalty_check_moves();

-- +goose StatementBegin
CREATE FUNCTION loyalty_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: the loyalty ledger is append-only; % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER loyalty_append_only BEFORE DELETE OR TRUNCATE OR UPDATE OF shopper_id ON loyalty_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_append_only();
CREATE TRIGGER loyalty_append_only BEFORE DELETE OR TRUNCATE OR UPDATE OF id, shopper_id, kind ON loyalty_entries
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_append_only();
CREATE TRIGGER loyalty_append_only BEFORE DELETE OR TRUNCATE OR UPDATE OF id, shopper_id, entry_id ON loyalty_lots
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_append_only();

-- +goose Down
DROP TRIGGER loyalty_append_only ON loyalty_lots;
DROP TRIGGER loyalty_append_only ON loyalty_entries;
DROP TRIGGER loyalty_append_only ON loyalty_accounts;
DROP FUNCTION loyalty_append_only();
DROP TRIGGER loyalty_check_moves ON loyalty_lot_moves;
DROP FUNCTION loyalty_check_moves();
DROP TRIGGER loyalty_check_lots ON loyalty_lots;
DROP FUNCTION loyalty_check_lots();
DROP TRIGGER loyalty_check_entries ON loyalty_entries;
DROP FUNCTION loyalty_check_entries();
ALTER TABLE loyalty_lot_moves ADD FOREIGN KEY (entry_id) REFERENCES loyalty_entries,
    ADD FOREIGN KEY (lot_id) REFERENCES loyalty_lots;
ALTER TABLE loyalty_lots ADD FOREIGN KEY (shopper_id) REFERENCES loyalty_accounts,
    ADD FOREIGN KEY (entry_id) REFERENCES loyalty_entries;
ALTER TABLE loyalty_entries ADD FOREIGN KEY (shopper_id) REFERENCES loyalty_accounts,
    ADD FOREIGN KEY (reverses) REFERENCES loyalty_entries;
