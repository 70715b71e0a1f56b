"""Code the tests share, imported as `from tests.helpers.<module> import ...`: recipes (the tiny recipes,
write_recipe, real data), cli (run_cli), runs (the tiny trained runs built once per test run), fake_hub,
cleanfid_ref and bad_inputs. Fixtures live in tests/conftest.py."""
