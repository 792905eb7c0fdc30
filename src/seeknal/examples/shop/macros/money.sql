{#- Money helpers, available in every node's SQL. -#}

{% macro round_money(expression) -%}
ROUND(CAST({{ expression }} AS DECIMAL(18, 4)), 2)
{%- endmacro %}

{% macro safe_divide(numerator, denominator) -%}
CASE WHEN ({{ denominator }}) = 0 THEN NULL ELSE ({{ numerator }}) / ({{ denominator }}) END
{%- endmacro %}
