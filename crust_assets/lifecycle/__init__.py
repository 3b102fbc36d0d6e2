"""The job lifecycle's pure core: typed events, the ledger they fold into, and the decisions
taken from it. No Dagster and no HTTP here: the sensor reads the events, asks `decide`, runs
the actions against the API and records what happened; the assets ask the ledger about a plan.
"""
