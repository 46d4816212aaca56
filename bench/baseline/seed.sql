-- Seeds the baseline's database (bench/run.py runs it with psql after
-- `manage.py migrate`) with what the project's benchmark database holds:
-- the 12 demo products and the 100 bench products (same SKUs and prices as
-- `seed_demo` and bench/django_jobs.py), :'customers' customers, and orders
-- up to :'orders' in all, placed over the last 30 days in seed_demo's status
-- mix, 1 to 4 distinct demo products of 1 to 3 units each.
--
-- Safe to run again: products and customers that exist are kept, and only
-- the orders missing up to :'orders' are added (later runs add none).

INSERT INTO shop_product (sku, name, price, stock) VALUES
    ('MUG-001', 'Enamel mug, blue', 12.50, 120),
    ('MUG-002', 'Enamel mug, red', 12.50, 8),
    ('TEE-S', 'Logo T-shirt, S', 19.99, 40),
    ('TEE-M', 'Logo T-shirt, M', 19.99, 60),
    ('TEE-L', 'Logo T-shirt, L', 19.99, 3),
    ('CAP-001', 'Baseball cap', 15.00, 75),
    ('BAG-001', 'Canvas tote bag', 9.90, 200),
    ('BOT-001', 'Steel water bottle', 24.00, 0),
    ('NBK-A5', 'Notebook A5, dotted', 7.45, 300),
    ('PEN-003', 'Fountain pen', 39.00, 15),
    ('STK-PACK', 'Sticker pack', 3.99, 500),
    ('HOO-M', 'Hoodie, M (discontinued)', 49.00, 2)
ON CONFLICT (sku) DO NOTHING;

INSERT INTO shop_product (sku, name, price, stock)
SELECT 'BENCH-' || lpad(n::text, 3, '0'), 'Bench product BENCH-' || lpad(n::text, 3, '0'), 5.00, 0
FROM generate_series(0, 99) AS n
ON CONFLICT (sku) DO NOTHING;

-- Customers with an unusable password ("!"): the bench only uses tokens.
INSERT INTO auth_user
    (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
     date_joined)
SELECT '!', false, 'customer' || lpad(n::text, 4, '0'), '', '',
       'customer' || lpad(n::text, 4, '0') || '@example.com', false, true, now()
FROM generate_series(1, :'customers'::int) AS n
ON CONFLICT (username) DO NOTHING;

CREATE TEMP TABLE seed_customers AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, id
FROM auth_user WHERE username LIKE 'customer%';

-- The 12 demo products, numbered 0-11: an order takes products
-- (first + 5k) mod 12 for k = 0 .. lines - 1, distinct as 5 and 12 are coprime.
CREATE TEMP TABLE seed_products AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, price
FROM shop_product WHERE sku NOT LIKE 'BENCH-%';

CREATE TEMP TABLE seed_orders AS
SELECT (SELECT coalesce(max(id), 0) FROM shop_order) + g AS id,
       1 + floor(random() * 4)::int AS lines,
       floor(random() * 12)::int AS first,
       floor(random() * 3)::int AS quantity,
       floor(random() * (SELECT count(*) FROM seed_customers))::int AS customer,
       random() AS pick,
       now() - interval '60 seconds' - random() * interval '30 days' AS placed
FROM generate_series(1, greatest(0, :'orders'::int - (SELECT count(*) FROM shop_order))) AS g;

CREATE TEMP TABLE seed_lines AS
SELECT o.id AS order_id, p.id AS product_id, 1 + (o.quantity + k) % 3 AS quantity,
       p.price AS unit_price
FROM seed_orders AS o
CROSS JOIN LATERAL generate_series(0, o.lines - 1) AS k
JOIN seed_products AS p ON p.n = (o.first + 5 * k) % 12;

INSERT INTO shop_order (id, customer_id, status, total, notes, created_at, updated_at)
SELECT o.id, c.id,
       CASE
           WHEN o.pick < 0.45 THEN 'delivered'
           WHEN o.pick < 0.65 THEN 'shipped'
           WHEN o.pick < 0.75 THEN 'processing'
           WHEN o.pick < 0.85 THEN 'pending'
           WHEN o.pick < 0.97 THEN 'cancelled'
           ELSE 'failed'
       END,
       t.total, '', o.placed, o.placed
FROM seed_orders AS o
JOIN seed_customers AS c ON c.n = o.customer
JOIN (SELECT order_id, sum(quantity * unit_price) AS total FROM seed_lines GROUP BY order_id) AS t
    ON t.order_id = o.id
ORDER BY o.id;

INSERT INTO shop_orderline (order_id, product_id, quantity, unit_price)
SELECT order_id, product_id, quantity, unit_price FROM seed_lines ORDER BY order_id;

SELECT setval(pg_get_serial_sequence('shop_order', 'id'), (SELECT max(id) FROM shop_order));
