-- Orders by status, counted as orders are written instead of counted over an index on every
-- /metrics scrape: that count grew with the history (140–320 ms at a million orders, from each
-- process scraped), and the index moved an entry on every status change.
--
-- Statement triggers count from each statement's transition tables, so a batch of orders costs
-- one count update per status it moves, whatever plan the write took. Each connection adds to
-- rows of its own (shard = its backend's pid), so writers never wait on each other's counts;
-- `PgStore::migrate` folds the rows of connections gone into shard -1. The sum over shards is
-- exact however many connections write (an order written by two at once is updated from its
-- latest version, and each trigger sees the row as that update found it). Writes made with
-- triggers disabled (`session_replication_role = replica`, `pg_restore --disable-triggers`)
-- are not counted.
CREATE TABLE order_status_counts (
    shard  INTEGER NOT NULL,
    status TEXT    NOT NULL,
    orders BIGINT  NOT NULL,
    PRIMARY KEY (shard, status)
);
-- No order is written from here until the migration commits, so the count below and the
-- triggers meet exactly.
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION oms_count_inserted_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_status_counts (shard, status, orders)
        SELECT pg_backend_pid(), status, COUNT(*) FROM inserted GROUP BY status
        ON CONFLICT (shard, status)
            DO UPDATE SET orders = order_status_counts.orders + EXCLUDED.orders;
    RETURN NULL;
END
$$;

-- Every updated row is in both tables, so the net move per status is what the rows have
-- after less what they had before: two scans, no join (a join of the two unindexed tables was
-- planned as a nested loop, quadratic in the batch).
CREATE FUNCTION oms_count_updated_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_status_counts (shard, status, orders)
        SELECT pg_backend_pid(), status, SUM(delta) FROM (
            SELECT status, 1 AS delta FROM after
            UNION ALL
            SELECT status, -1 FROM before
        ) moved
        GROUP BY status HAVING SUM(delta) <> 0
        ON CONFLICT (shard, status)
            DO UPDATE SET orders = order_status_counts.orders + EXCLUDED.orders;
    RETURN NULL;
END
$$;

CREATE FUNCTION oms_count_deleted_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_status_counts (shard, status, orders)
        SELECT pg_backend_pid(), status, -COUNT(*) FROM deleted GROUP BY status
        ON CONFLICT (shard, status)
            DO UPDATE SET orders = order_status_counts.orders + EXCLUDED.orders;
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_counted_on_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION oms_count_inserted_orders();
CREATE TRIGGER orders_counted_on_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS before NEW TABLE AS after
    FOR EACH STATEMENT EXECUTE FUNCTION oms_count_updated_orders();
CREATE TRIGGER orders_counted_on_delete AFTER DELETE ON orders
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION oms_count_deleted_orders();

CREATE FUNCTION oms_count_truncated_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM order_status_counts;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_counted_on_truncate AFTER TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION oms_count_truncated_orders();

INSERT INTO order_status_counts (shard, status, orders)
    SELECT -1, status, COUNT(*) FROM orders GROUP BY status;
DROP INDEX orders_by_status;
