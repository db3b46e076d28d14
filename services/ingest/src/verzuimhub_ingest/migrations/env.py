from verzuimhub_ingest.models import Base
from verzuimhub_shared.migrations import run_env

run_env(Base.metadata)
