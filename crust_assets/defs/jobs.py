"""Asset jobs: what the schedule / file sensor launch, and what the submitter sensor requests."""

import dagster as dg

from crust_assets.defs.partitions import daily_partitions

# Every run of this pipeline carries this tag: deploy/dagster.yaml limits them by it.
PIPELINE_RUN_TAGS = {"crust/pipeline": "contact_enrichment"}

# The first two assets of a partition: read the list, plan and enqueue its jobs (no API call).
plan_contact_enrichment_job = dg.define_asset_job(
    name="plan_contact_enrichment",
    selection=dg.AssetSelection.assets("contact_url_list", "contact_enrichment_batch"),
    partitions_def=daily_partitions,
    run_tags=PIPELINE_RUN_TAGS,
    description="Read a day's URL list and enqueue its Crustdata jobs (the sensor submits them).",
)

# Requested by contact_enrichment_sensor when every job of a partition has finished.
enriched_contacts_job = dg.define_asset_job(
    name="load_enriched_contacts",
    selection=dg.AssetSelection.assets("enriched_contacts"),
    partitions_def=daily_partitions,
    run_tags=PIPELINE_RUN_TAGS,
    description="Download a partition's job results and write enriched_contacts[date].",
)
