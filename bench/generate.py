"""Generate layered seeknal projects of N transforms for the benchmark.

A project has three CSV sources (customers, products, orders: a few thousand rows each)
and N transforms in layers. Layer 0 joins the three sources; every later transform reads
one or two upstream nodes (mostly the previous layer) through one of five SQL shapes:
a filter with a moving-average window, a join of two upstream nodes, a weekly rollup, a
top-N ranking and an enrichment with a source. Every transform has the same output
columns, so any node can read any other::

    customer_id, region, category, order_day, order_count, revenue, score

The three ref styles, ``var()``, a project macro, views, and SQL in separate ``.sql``
files all occur. Everything is seeded: the same arguments write the same bytes.

Usage::

    python bench/generate.py OUT_DIR --transforms 100 [--rows 5000] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

REGIONS = ("north", "south", "east", "west", "central")
SEGMENTS = ("consumer", "small_business", "enterprise")
CATEGORIES = ("books", "games", "garden", "kitchen", "music", "office", "sports", "toys")
STATUSES = ("completed",) * 8 + ("shipped",) * 3 + ("cancelled",)
OUTPUT_COLUMNS = (
    "customer_id",
    "region",
    "category",
    "order_day",
    "order_count",
    "revenue",
    "score",
)
SHAPES = ("window", "join", "rollup", "ranking", "enrich")

PROJECT_YML = """\
name: {name}
dialect: duckdb
vars:
  min_amount: 5
  first_day: "2024-01-01"
"""

MACROS_SQL = """\
{% macro safe_ratio(numerator, denominator) -%}
CASE WHEN ({{ denominator }}) = 0 THEN NULL ELSE ({{ numerator }}) / ({{ denominator }}) END
{%- endmacro %}
"""

SOURCES = {
    "customers": """\
kind: source
name: customers
description: Customers with their region and segment.
owner: crm
source: csv
table: data/customers.csv
""",
    "products": """\
kind: source
name: products
description: Product catalogue.
owner: catalogue
source: csv
table: data/products.csv
""",
    "orders": """\
kind: source
name: orders
description: Order lines.
owner: sales
source: csv
table: data/orders.csv
columns:
  order_id: bigint
  customer_id: bigint
  product_id: bigint
  ordered_at: timestamp
  quantity: integer
  status: varchar
""",
}


@dataclass(frozen=True)
class Transform:
    """One generated transform: its name, layer, shape and upstream node ids."""

    name: str
    layer: int
    shape: str
    upstream: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"transform.{self.name}"


def write_csv(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_data(root: Path, rows: int, rng: random.Random) -> None:
    """The three CSVs: ``rows`` orders, ``rows // 2`` customers, ``rows // 5`` products."""
    n_customers = max(10, rows // 2)
    n_products = max(10, rows // 5)
    customers = []
    for i in range(n_customers):
        signup = date(2022, 1, 1) + timedelta(days=rng.randrange(700))
        customers.append((i + 1, rng.choice(REGIONS), rng.choice(SEGMENTS), signup.isoformat()))
    write_csv(
        root / "data" / "customers.csv",
        ["customer_id", "region", "segment", "signup_date"],
        customers,
    )
    products = [
        (
            i + 1,
            rng.choice(CATEGORIES),
            f"{rng.uniform(2, 250):.2f}",
            f"supplier_{rng.randrange(40)}",
        )
        for i in range(n_products)
    ]
    write_csv(
        root / "data" / "products.csv", ["product_id", "category", "price", "supplier"], products
    )
    start = datetime(2024, 1, 1)
    orders = []
    for i in range(rows):
        at = start + timedelta(days=rng.randrange(180), seconds=rng.randrange(86400))
        orders.append(
            (
                i + 1,
                rng.randrange(1, n_customers + 1),
                rng.randrange(1, n_products + 1),
                at.strftime("%Y-%m-%d %H:%M:%S"),
                rng.randint(1, 6),
                rng.choice(STATUSES),
            )
        )
    write_csv(
        root / "data" / "orders.csv",
        ["order_id", "customer_id", "product_id", "ordered_at", "quantity", "status"],
        orders,
    )


def plan_layers(n: int, rng: random.Random) -> list[Transform]:
    """Lay out ``n`` transforms in layers; pick each one's shape and upstream nodes."""
    depth = max(2, min(n, round(math.sqrt(n) / 2)))
    width = math.ceil(n / depth)
    transforms: list[Transform] = []
    layers: list[list[Transform]] = []
    for index in range(n):
        layer = index // width
        name = f"l{layer:02d}_t{index:04d}"
        if layer == 0:
            node = Transform(name, 0, "sources", ())
        else:
            shape = SHAPES[index % len(SHAPES)]
            primary = rng.choice(layers[layer - 1]).id
            upstream: tuple[str, ...] = (primary,)
            if shape == "join":
                earlier = [t.id for lay in layers for t in lay if t.id != primary]
                upstream = (primary, rng.choice(earlier)) if earlier else (primary, primary)
                if upstream[0] == upstream[1]:
                    upstream = (primary,)
                    shape = "window"
            node = Transform(name, layer, shape, upstream)
        if layer == len(layers):
            layers.append([])
        layers[layer].append(node)
        transforms.append(node)
    return transforms


def ref(node_id: str, style: int) -> str:
    """Name an input in one of the three ref styles."""
    if style == 0:
        return "{{ ref('" + node_id + "') }}"
    if style == 1:
        return f"ref('{node_id}')"
    return node_id


def render_sql(t: Transform, index: int, rng: random.Random) -> str:
    """The SQL of one transform (10-40 lines)."""
    style = index % 3
    # Comments name nodes without their kind, so no tool mistakes them for refs.
    over = ", ".join(u.split(".", 1)[1] for u in t.upstream) or "orders, customers, products"
    header = f"-- {t.name}: {t.shape} over {over}\n"
    if t.shape == "sources":
        cats = sorted(rng.sample(CATEGORIES, rng.randint(3, len(CATEGORIES))))
        cat_list = ", ".join(f"'{c}'" for c in cats)
        return (
            header
            + f"""\
WITH enriched AS (
    SELECT
        o.customer_id,
        c.region,
        p.category,
        CAST(o.ordered_at AS DATE) AS order_day,
        o.quantity * p.price AS line_amount
    FROM {ref("source.orders", style)} AS o
    JOIN {ref("source.customers", style)} AS c ON c.customer_id = o.customer_id
    JOIN {ref("source.products", style)} AS p ON p.product_id = o.product_id
    WHERE o.status <> 'cancelled'
      AND o.quantity * p.price > {{{{ var('min_amount') }}}} + {rng.randint(0, 20)}
      AND p.category IN ({cat_list})
),
daily AS (
    SELECT customer_id, region, category, order_day,
           COUNT(*) AS order_count, SUM(line_amount) AS revenue
    FROM enriched
    GROUP BY customer_id, region, category, order_day
)
SELECT
    customer_id,
    region,
    category,
    order_day,
    order_count,
    revenue,
    revenue / SUM(revenue) OVER (PARTITION BY region, order_day) AS score
FROM daily
"""
        )
    up = t.upstream[0]
    if t.shape == "window":
        return (
            header
            + f"""\
WITH base AS (
    SELECT customer_id, region, category, order_day, order_count, revenue
    FROM {ref(up, style)}
    WHERE revenue > {rng.randint(0, 30)}
)
SELECT
    customer_id,
    region,
    category,
    order_day,
    order_count,
    revenue,
    AVG(revenue) OVER (
        PARTITION BY customer_id
        ORDER BY order_day
        ROWS BETWEEN {rng.randint(2, 13)} PRECEDING AND CURRENT ROW
    ) AS score
FROM base
"""
        )
    if t.shape == "join":
        other = t.upstream[1]
        return (
            header
            + f"""\
WITH left_side AS (
    SELECT customer_id, region, category, order_day, order_count, revenue
    FROM {ref(up, style)}
),
right_side AS (
    SELECT
        customer_id,
        order_day,
        SUM(revenue) AS other_revenue,
        SUM(order_count) AS other_orders
    FROM {ref(other, (style + 1) % 3)}
    GROUP BY customer_id, order_day
)
SELECT
    l.customer_id,
    l.region,
    l.category,
    l.order_day,
    CAST(l.order_count + COALESCE(r.other_orders, 0) AS BIGINT) AS order_count,
    l.revenue,
    {{{{ safe_ratio('COALESCE(r.other_revenue, 0)', 'l.revenue') }}}} AS score
FROM left_side AS l
LEFT JOIN right_side AS r
    ON r.customer_id = l.customer_id AND r.order_day = l.order_day
"""
        )
    if t.shape == "rollup":
        unit = rng.choice(("week", "month"))
        return (
            header
            + f"""\
SELECT
    customer_id,
    region,
    category,
    CAST(DATE_TRUNC('{unit}', order_day) AS DATE) AS order_day,
    CAST(SUM(order_count) AS BIGINT) AS order_count,
    SUM(revenue) AS revenue,
    MAX(score) AS score
FROM {ref(up, style)}
WHERE order_day >= DATE '{{{{ var("first_day") }}}}'
GROUP BY
    customer_id,
    region,
    category,
    CAST(DATE_TRUNC('{unit}', order_day) AS DATE)
HAVING SUM(revenue) > {rng.randint(0, 50)}
"""
        )
    if t.shape == "ranking":
        return (
            header
            + f"""\
WITH ranked AS (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY region, category
            ORDER BY revenue DESC, customer_id, order_day
        ) AS rank_in_group
    FROM {ref(up, style)}
)
SELECT
    customer_id,
    region,
    category,
    order_day,
    order_count,
    revenue,
    CAST(rank_in_group AS DOUBLE) AS score
FROM ranked
WHERE rank_in_group <= {rng.choice((50, 100, 200, 400))}
"""
        )
    # enrich: join the upstream node back to a source
    return (
        header
        + f"""\
WITH recent AS (
    SELECT customer_id, category, order_day, order_count, revenue, score
    FROM {ref(up, style)}
    WHERE order_day >= DATE '2024-01-01' + INTERVAL {rng.randint(0, 60)} DAY
)
SELECT
    r.customer_id,
    c.region,
    r.category,
    r.order_day,
    r.order_count,
    r.revenue * CASE c.segment WHEN 'enterprise' THEN 1.1 ELSE 1.0 END AS revenue,
    COALESCE(r.score, 0) + DATEDIFF('day', c.signup_date, r.order_day) / 365.0 AS score
FROM recent AS r
JOIN {ref("source.customers", style)} AS c ON c.customer_id = r.customer_id
"""
    )


def transform_yaml(t: Transform, index: int, sql: str, sql_file: str | None) -> str:
    """The node file of one transform, with SQL inline or named by ``sql:``."""
    inputs = list(t.upstream)
    if t.shape == "sources":
        inputs = ["source.orders", "source.customers", "source.products"]
    elif t.shape == "enrich":
        inputs.append("source.customers")
    lines = [
        "kind: transform",
        f"name: {t.name}",
        f"description: Layer {t.layer} {t.shape} transform number {index}.",
        f"owner: team_{index % 7}",
        f"tags: [bench, layer_{t.layer}, {t.shape}]",
    ]
    if index % 7 == 3:
        lines.append("materialized: view")
    lines.append("inputs:")
    lines.extend(f"  - ref: {node_id}" for node_id in inputs)
    lines.append("columns:")
    lines.append("  revenue:")
    lines.append("    description: Revenue in the shop's currency.")
    if sql_file:
        lines.append(f"sql: {sql_file}")
    else:
        lines.append("transform: |")
        lines.extend(("  " + line) if line else "" for line in sql.splitlines())
    return "\n".join(lines) + "\n"


def generate_project(out: Path, transforms: int, rows: int = 5000, seed: int = 7) -> Path:
    """Write a project of ``transforms`` transforms into ``out`` (replaced if it exists)."""
    if transforms < 1:
        raise ValueError("transforms must be >= 1")
    rng = random.Random(seed * 1_000_003 + transforms)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "seeknal_project.yml").write_text(
        PROJECT_YML.format(name=f"bench_{transforms}"), encoding="utf-8"
    )
    (out / ".gitignore").write_text("target/\n", encoding="utf-8")
    (out / "macros").mkdir()
    (out / "macros" / "ratios.sql").write_text(MACROS_SQL, encoding="utf-8")
    write_data(out, rows, rng)
    sources = out / "seeknal" / "sources"
    sources.mkdir(parents=True)
    for name, text in SOURCES.items():
        (sources / f"{name}.yml").write_text(text, encoding="utf-8")
    for index, t in enumerate(plan_layers(transforms, rng)):
        folder = out / "seeknal" / "transforms" / f"layer_{t.layer:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        sql = render_sql(t, index, rng)
        sql_file = f"{t.name}.sql" if index % 4 == 1 else None
        if sql_file:
            (folder / sql_file).write_text(sql, encoding="utf-8")
        (folder / f"{t.name}.yml").write_text(
            transform_yaml(t, index, sql, sql_file), encoding="utf-8"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a layered seeknal project.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--transforms", type=int, default=100)
    parser.add_argument("--rows", type=int, default=5000, help="orders (customers: half)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    generate_project(args.out, args.transforms, args.rows, args.seed)
    print(f"wrote {args.transforms} transforms to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
