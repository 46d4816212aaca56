-- The database work of placing a 3-line order, without Django: a ceiling for
-- the create scenario. bench/run.py passes, with -D:
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
UPDATE inventory_product SET stock_reserved = stock_reserved + 1, updated_at = now()
  WHERE id = (ARRAY[:products])[:i1] AND stock_on_hand - stock_reserved >= 1;
UPDATE inventory_product SET stock_reserved = stock_reserved + 1, updated_at = now()
  WHERE id = (ARRAY[:products])[:i2] AND stock_on_hand - stock_reserved >= 1;
UPDATE inventory_product SET stock_reserved = stock_reserved + 1, updated_at = now()
  WHERE id = (ARRAY[:products])[:i3] AND stock_on_hand - stock_reserved >= 1;
INSERT INTO orders_order
    (customer_id, status, total, currency, shipping_address, notes, created_at, updated_at)
  VALUES (:customer, 'pending', 30.00, 'USD', '', '', now(), now())
  RETURNING id AS order_id \gset
INSERT INTO orders_orderline (order_id, product_id, sku, name, unit_price, quantity, line_total)
  VALUES (:order_id, (ARRAY[:products])[:i1], 'BENCH', 'pgbench line', 10.00, 1, 10.00),
         (:order_id, (ARRAY[:products])[:i2], 'BENCH', 'pgbench line', 10.00, 1, 10.00),
         (:order_id, (ARRAY[:products])[:i3], 'BENCH', 'pgbench line', 10.00, 1, 10.00);
END;
