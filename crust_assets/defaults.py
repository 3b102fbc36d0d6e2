"""The defaults of the settings several entry points read (the resources, the Component, the
command line, the demo): each is written once here so they cannot drift apart. Plain constants,
so the command line imports no Dagster to read them."""

# A day whose worst-case cost in credits is above this is refused (CRUST_CREDIT_BUDGET).
DEFAULT_CREDIT_BUDGET = 25_000
# URLs enriched more recently than this many days are reused (CRUST_REENRICH_WINDOW_DAYS).
DEFAULT_REENRICH_WINDOW_DAYS = 30
# Input lists and the warehouse: a path or an fsspec URL.
DATA_DIR_ENV = "CRUST_DATA_DIR"
DEFAULT_DATA_DIR = "data"
# The local emulator's documented address.
EMULATOR_HOST = "127.0.0.1"
EMULATOR_PORT = 8711
EMULATOR_BASE_URL = f"http://{EMULATOR_HOST}:{EMULATOR_PORT}"
