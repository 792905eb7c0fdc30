# Tasks for developers. Uses .venv/bin when a .venv exists, else whatever is on PATH.

bin := if path_exists(".venv/bin/python") == "true" { justfile_directory() / ".venv/bin/" } else { "" }
python := if bin == "" { "python3" } else { bin + "python" }

# List the recipes.
default:
    @{{just_executable()}} --list

# Run the test suite, as the README and .ci/run do.
test *ARGS:
    {{bin}}pytest -n 2 {{ARGS}}

# Lint, check formatting, type-check and check import contracts.
lint:
    {{bin}}ruff check src tests bench
    {{bin}}ruff format --check src tests bench
    {{bin}}mypy src
    {{bin}}lint-imports

# Run the benchmark (compile times, run time vs plain DuckDB); writes bench/results.json.
bench *ARGS:
    {{python}} bench/run.py {{ARGS}}

# Run the commands of the getting-started guide.
docs:
    {{bin}}pytest tests/docs -q
