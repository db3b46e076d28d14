from verzuimhub_melding.models import Base
from verzuimhub_shared.migrations import run_env

run_env(Base.metadata)
