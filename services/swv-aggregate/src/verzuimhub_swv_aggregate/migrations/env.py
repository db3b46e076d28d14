from verzuimhub_shared.migrations import run_env
from verzuimhub_swv_aggregate.models import Base

run_env(Base.metadata)
