-- Inputs are named here with bare ref('...') calls, without Jinja braces.
WITH order_facts AS (
    SELECT
        customer_id,
        COUNT(*) AS order_count,
        MIN(order_date) AS first_order_date,
        MAX(order_date) AS last_order_date,
        SUM(amount) AS total_spent
    FROM ref('transform.stg_orders')
    WHERE is_billable
    GROUP BY customer_id
)
SELECT
    c.customer_id,
    c.first_name,
    c.last_name,
    c.country_code,
    cc.country_name,
    cc.region,
    COALESCE(f.order_count, 0) AS order_count,
    f.first_order_date,
    f.last_order_date,
    COALESCE(f.total_spent, 0) AS total_spent
FROM ref('source.customers') AS c
LEFT JOIN ref('seed.country_codes') AS cc ON cc.country_code = c.country_code
LEFT JOIN order_facts AS f ON f.customer_id = c.customer_id
