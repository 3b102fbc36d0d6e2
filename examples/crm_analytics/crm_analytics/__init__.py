"""An example second code location: RevOps analytics on crust_assets' tables."""
