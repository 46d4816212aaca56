-- The database work of placing a 3-line order, without Django: a ceiling for
-- the create scenario. The same rows as the app writes: the idempotency
-- record (claimed, then its response stored), the reservations and their
-- ledger rows, the order, its lines, its history entry and its outbox event. bench/run.py passes, with -D:
--   products   the active demo product ids, ascending, comma-separated
--   nproducts  how many there are
--   customer   a customer id
-- Three distinct random products are reserved in id order, as
-- inventory.locks does, so concurrent clients cannot deadlock.
\set a random(0, :nproducts - 1)
\set d1 random(1, :nproducts - 2)
\set d2 random(:d1 + 1, :nproducts - 1)
\set b (:a + :d1) % :nproducts
\set c (:a + :d2) % :nproducts
\set i1 least(:a, :b, :c) + 1
\set i3 greatest(:a, :b, :c) + 1
\set i2 :a + :b + :c + 3 - :i1 - :i3
BEGIN;
INSERT INTO orders_idempotencyrecord (user_id, key, fingerprint, response_status, response_body, created_at)
  VALUES (:customer, md5(random()::text), md5(random()::text), 0, '{}', now())
  ON CONFLICT (user_id, key) DO NOTHING RETURNING id AS record_id \gset
UPDATE inventory_product SET stock_reserved = stock_reserved + 1, updated_at = now()
  WHERE id = (ARRAY[:products])[:i1] AND stock_on_hand - stock_reserved >= 1;
UPDATE inventory_product SET stock_reserved = stock_reserved + 1, updated_at = now()
  WHERE id = (ARRAY[:products])[:i2] AND stock_on_hand - stock_reserved >= 1;
UPDATE inventory_product SET stock_reserved = stock_reserved + 1, updated_at = now()
  WHERE id = (ARRAY[:products])[:i3] AND stock_on_hand - stock_reserved >= 1;
INSERT INTO orders_order
    (customer_id, status, total, currency, shipping_address, notes, event_sequence,
     created_at, updated_at)
  VALUES (:customer, 'pending', 30.00, 'USD', '', '', 1, now(), now())
  RETURNING id AS order_id \gset
INSERT INTO orders_orderline (order_id, product_id, sku, name, unit_price, quantity, line_total)
  VALUES (:order_id, (ARRAY[:products])[:i1], 'BENCH', 'pgbench line', 10.00, 1, 10.00),
         (:order_id, (ARRAY[:products])[:i2], 'BENCH', 'pgbench line', 10.00, 1, 10.00),
         (:order_id, (ARRAY[:products])[:i3], 'BENCH', 'pgbench line', 10.00, 1, 10.00);
INSERT INTO inventory_stockmovement (product_id, kind, quantity, order_id, actor_id, note, created_at)
  VALUES ((ARRAY[:products])[:i1], 'reserve', 1, :order_id, :customer, '', now()),
         ((ARRAY[:products])[:i2], 'reserve', 1, :order_id, :customer, '', now()),
         ((ARRAY[:products])[:i3], 'reserve', 1, :order_id, :customer, '', now());
INSERT INTO orders_orderevent (order_id, type, from_status, to_status, actor_id, note, data, created_at)
  VALUES (:order_id, 'created', '', 'pending', :customer, '', '{}', now());
INSERT INTO core_event (uid, type, aggregate, aggregate_id, sequence, data, created_at)
  VALUES (gen_random_uuid(), 'order.created', 'order', :order_id, 1,
          jsonb_build_object('order', jsonb_build_object('id', :order_id, 'status', 'pending')), now());
UPDATE orders_idempotencyrecord SET response_status = 201, response_body = '{"id": 1}'
  WHERE id = :record_id;
END;
